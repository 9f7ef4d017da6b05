package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/invited/invited/httpapi"
	"github.com/invited/invited/internal/daemonproc"
	"github.com/invited/invited/store"
)

const keysUsage = `Usage:
  invited keys create --scope SCOPE [--scope SCOPE…] [--name NAME]
  invited keys list
  invited keys revoke ID

Manages API keys. A scope is "admin" or "organizer:EMAIL" (that organizer's
events only). The key is shown once, when created; only its hash is kept.
With the daemon stopped the keys are written to its database directly;
while it runs, through its admin API (with the admin key of --admin-key,
INVITED_ADMIN_KEY or DATA/admin.key). The daemon's flags (--data,
--config, --http, …) say where.
`

type scopes []string

func (s *scopes) String() string     { return strings.Join(*s, ",") }
func (s *scopes) Set(v string) error { *s = append(*s, v); return nil }

func keys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, keysUsage)
		if len(args) == 0 {
			return errors.New("keys: no subcommand")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("invited keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sc scopes
	var name string
	if sub == "create" {
		fs.Var(&sc, "scope", "`scope` of the key: admin or organizer:EMAIL (repeatable)")
		fs.StringVar(&name, "name", "", "a `name` to recognise the key by")
	}
	// The daemon's own flags say where its data and API are; the rest of
	// them are accepted and ignored.
	cfg, err := loadConfig(args, getenv, fs)
	if err != nil {
		return err
	}
	c := keyClient{cfg: cfg}
	switch sub {
	case "create":
		if len(sc) == 0 {
			return errors.New("keys create: give at least one --scope")
		}
		for i, s := range sc {
			if sc[i], err = httpapi.ValidScope(s); err != nil {
				return err
			}
		}
		k, err := c.create(ctx, name, sc)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created key %s (%s); send it as X-Api-Key, it is not shown again:\n%s\n", k.ID, strings.Join(k.Scopes, ", "), k.Key)
		return nil
	case "list":
		list, err := c.list(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tREVOKED")
		for _, k := range list {
			revoked := ""
			if !k.Revoked.IsZero() {
				revoked = k.Revoked.Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), k.Created.Format(time.DateTime), revoked)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("keys revoke: give the key's ID")
		}
		if err := c.revoke(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked key %s\n", fs.Arg(0))
		return nil
	}
	fmt.Fprint(stderr, keysUsage)
	return fmt.Errorf("keys: unknown subcommand %q", sub)
}

// keyClient manages keys in the database, or through the running daemon.
type keyClient struct{ cfg Config }

// withDB runs fn on the database if no daemon holds it; ok is false if one
// does.
func (c keyClient) withDB(fn func(*store.DB) error) (ok bool, err error) {
	db, err := store.Open(c.cfg.dbPath(), store.Options{LockTimeout: 100 * time.Millisecond})
	if errors.Is(err, store.ErrLocked) {
		return false, nil
	} else if err != nil {
		return true, err
	}
	defer db.Close()
	return true, fn(db)
}

func (c keyClient) create(ctx context.Context, name string, sc []string) (httpapi.KeyJSON, error) {
	var out httpapi.KeyJSON
	ok, err := c.withDB(func(db *store.DB) error {
		k, token := store.NewAPIKey(name, sc, time.Now())
		out = httpapi.ToKeyJSON(k)
		out.Key = token
		return db.Update(ctx, func(tx *store.Tx) error { return tx.PutKey(k) })
	})
	if ok || err != nil {
		return out, err
	}
	body, _ := json.Marshal(map[string]any{"name": name, "scopes": sc})
	return out, c.api(ctx, "POST", "/admin/keys", body, &out)
}

func (c keyClient) list(ctx context.Context) ([]httpapi.KeyJSON, error) {
	var out []httpapi.KeyJSON
	ok, err := c.withDB(func(db *store.DB) error {
		return db.View(func(tx *store.Tx) error {
			list, err := tx.Keys()
			for _, k := range list {
				out = append(out, httpapi.ToKeyJSON(k))
			}
			return err
		})
	})
	if ok || err != nil {
		return out, err
	}
	var resp struct{ Keys []httpapi.KeyJSON }
	err = c.api(ctx, "GET", "/admin/keys", nil, &resp)
	return resp.Keys, err
}

func (c keyClient) revoke(ctx context.Context, id string) error {
	ok, err := c.withDB(func(db *store.DB) error {
		return db.Update(ctx, func(tx *store.Tx) error {
			_, err := tx.RevokeKey(id, time.Now())
			return err
		})
	})
	if ok || err != nil {
		return err
	}
	return c.api(ctx, "DELETE", "/admin/keys/"+id, nil, nil)
}

// api calls the running daemon's admin API.
func (c keyClient) api(ctx context.Context, method, path string, body []byte, out any) error {
	key := c.cfg.AdminKey
	if key == "" {
		var err error
		if key, err = savedAdminKey(c.cfg); err != nil {
			return fmt.Errorf("the daemon is running and no admin key was given; reading %s: %w", c.cfg.adminKeyPath(), err)
		} else if key == "" {
			return fmt.Errorf("the daemon is running and no admin key was given nor found in %s", c.cfg.adminKeyPath())
		}
	}
	addr := c.cfg.HTTP
	if a, err := daemonproc.ReadAddrs(c.cfg.Data); err == nil {
		addr = a.HTTP // where the running daemon really listens
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the database is in use and the daemon's API does not answer: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
