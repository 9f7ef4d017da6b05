package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/invited/invited/httpapi"
	"github.com/invited/invited/internal/daemonproc"
	"github.com/invited/invited/internal/membudget"
	"github.com/invited/invited/itip"
	"github.com/invited/invited/mailer"
	"github.com/invited/invited/pipeline"
	"github.com/invited/invited/senderauth"
	"github.com/invited/invited/smtpd"
	"github.com/invited/invited/store"
	"github.com/invited/invited/templates"
)

// App is a running daemon: store, pipeline, SMTP and HTTP listeners.
type App struct {
	cfg      Config
	log      *slog.Logger
	db       *store.DB
	pl       *pipeline.Pipeline
	sender   pipeline.Sender
	smtp     *smtpd.Server
	http     *http.Server
	smtpLn   net.Listener
	httpLn   net.Listener
	adminKey string
	g        *errgroup.Group
}

// Start opens the store and listeners and starts serving; it returns once
// the listeners are bound. The daemon runs until ctx ends, then drains;
// Wait returns when it has stopped.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (_ *App, err error) {
	a := &App{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return nil, err
	}
	// Bind before starting anything, so address errors surface here.
	if a.smtpLn, err = net.Listen("tcp", cfg.SMTP); err != nil {
		return nil, err
	}
	if a.httpLn, err = net.Listen("tcp", cfg.HTTP); err != nil {
		return nil, err
	}
	if a.adminKey, err = adminKey(cfg, log); err != nil {
		return nil, err
	}
	if a.db, err = store.Open(cfg.dbPath(), store.Options{}); err != nil {
		return nil, err
	}
	if cfg.Relay != "" {
		hostname := cfg.Hostname
		if hostname == "" {
			hostname = cfg.Domain
		}
		a.sender, err = mailer.NewRelay(mailer.Config{URL: cfg.Relay, Conns: cfg.RelayConns, HELO: hostname}, log.With("component", "relay"))
	} else {
		dir := filepath.Join(cfg.Data, "outbox")
		a.sender, err = mailer.NewOutbox(dir)
		log.Info("no relay configured: outgoing mail is written as .eml files", "dir", dir)
	}
	if err != nil {
		return nil, err
	}
	if cfg.DKIMKey != "" {
		key, err := mailer.LoadDKIMKey(cfg.DKIMKey)
		if err != nil {
			return nil, err
		}
		a.sender = &mailer.Signer{Next: a.sender, Domain: cfg.Domain, Selector: cfg.DKIMSelector, Key: key}
		log.Info("outbound mail is DKIM-signed", "selector", cfg.DKIMSelector, "domain", cfg.Domain)
	}
	tmpl, err := templates.New(cfg.Templates)
	if err != nil {
		return nil, err
	}
	if cfg.AuthPolicy == pipeline.PolicyNone {
		log.Warn("auth policy is none: anyone can act for any organizer or attendee; use it for local development only")
	}
	resolver := cfg.resolver
	if resolver == nil {
		resolver = senderauth.NewResolver(cfg.DNS)
	}
	if cfg.DNSCache > 0 {
		resolver = senderauth.NewCache(resolver, time.Duration(cfg.DNSCache), 0)
	}
	checker := &senderauth.Checker{Resolver: resolver, Policy: cfg.AuthPolicy, TrustedAuthServID: cfg.TrustedAuthServID}
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = "http://" + a.httpLn.Addr().String()
	}
	// The listener and the stages have budgets of their own: sharing one,
	// a steady inflow of large messages would keep the stages from ever
	// reading what the listener took in.
	listenerMemory := membudget.New(cfg.MaxMessageMemory - cfg.MaxMessageMemory/4)
	stageMemory := membudget.New(cfg.MaxMessageMemory / 4)
	a.pl, err = pipeline.New(pipeline.Config{
		Domain:       cfg.Domain,
		Memory:       stageMemory,
		PublicURL:    publicURL,
		UpgradeURL:   cfg.UpgradeURL,
		EventLimit:   cfg.EventLimit,
		InviteLimit:  cfg.InviteLimit,
		MaxBulkRows:  cfg.MaxBulkRows,
		DomainRate:   cfg.SendRatePerDomain,
		MIME:         itip.Limits{MaxDepth: cfg.MaxMIMEDepth, MaxParts: cfg.MaxMIMEParts, MaxPartBytes: cfg.MaxPartBytes},
		Auth:         checker,
		MaxAttempts:  cfg.MaxAttempts,
		MaxInbound:   cfg.MaxInbound,
		BurstRate:    cfg.BurstRate,
		BurstBuffer:  cfg.BurstBuffer,
		Workers:      map[string]int{pipeline.StageSend: cfg.SendWorkers},
		SendYield:    sendYield(cfg.SendYield),
		Templates:    tmpl,
		DrainTimeout: time.Duration(cfg.ShutdownTimeout),
	}, a.db, a.sender, log.With("component", "pipeline"))
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	plain, tagged := a.pl.Mailboxes()
	var checkSPF func(context.Context, net.IP, string, string) (string, string)
	if checker.UsesSPFAtData() {
		checkSPF = checker.SPFAtData
	}
	a.smtp, err = smtpd.New(smtpd.Config{
		Domain:             cfg.Domain,
		Hostname:           cfg.Hostname,
		Mailboxes:          plain,
		Tagged:             tagged,
		MaxMessageBytes:    cfg.MaxMessageBytes,
		MaxRecipients:      cfg.MaxRecipients,
		MaxHeaderBytes:     cfg.MaxHeaderBytes,
		DataTimeout:        time.Duration(cfg.DataTimeout),
		MaxConns:           cfg.MaxConns,
		MaxConnsPerIP:      cfg.MaxConnsPerIP,
		Memory:             listenerMemory,
		MaxMessagesPerConn: cfg.MaxMessagesPerConn,
		ReadTimeout:        time.Duration(cfg.SMTPTimeout),
		WriteTimeout:       time.Duration(cfg.SMTPTimeout),
		TLS:                tlsCfg,
		CheckSPF:           checkSPF,
	}, queue{a.pl}, log.With("component", "smtpd"))
	if err != nil {
		return nil, err
	}
	a.http = &http.Server{
		Handler: httpapi.New(httpapi.Config{AdminKey: a.adminKey, LandingHosts: cfg.LandingHosts, ShopifySecret: cfg.ShopifySecret,
			TrustForwarded: cfg.TrustForwarded, Metrics: metrics(a.db, a.pl, map[string]*membudget.Budget{"listener": listenerMemory, "stages": stageMemory}), Rates: &httpapi.RateLimits{
				PerIP:       cfg.InviteRateIP,
				PerAttendee: cfg.InviteRateAttendee,
				PerEvent:    cfg.InviteRateEvent,
			}},
			a.db, a.pl, log.With("component", "http")),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Other programs (invited keys, tests, the bench) find the listeners
	// here, ports the system chose included.
	if err := daemonproc.WriteAddrs(cfg.Data, daemonproc.Addrs{SMTP: a.SMTPAddr(), HTTP: a.HTTPAddr()}); err != nil {
		return nil, fmt.Errorf("write %s: %w", daemonproc.ListenFile, err)
	}
	log.Info("invited started", "domain", cfg.Domain, "smtp", a.smtpLn.Addr().String(),
		"http", a.httpLn.Addr().String(), "data", cfg.Data, "auth_policy", cfg.AuthPolicy)

	g, gctx := errgroup.WithContext(ctx)
	a.g = g
	g.Go(func() error { return a.pl.Run(gctx) })
	g.Go(func() error { return a.smtp.Serve(a.smtpLn) })
	g.Go(func() error {
		if err := a.http.Serve(a.httpLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		// Sessions get a few seconds to finish a message; the pipeline, which
		// stops on the same signal, gets ShutdownTimeout for work in hand.
		grace := min(5*time.Second, time.Duration(cfg.ShutdownTimeout))
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		var herr error
		var wg sync.WaitGroup
		wg.Go(func() {
			if herr = a.http.Shutdown(sctx); errors.Is(herr, context.DeadlineExceeded) {
				herr = a.http.Close()
			}
		})
		serr := a.smtp.Shutdown(sctx)
		wg.Wait()
		return errors.Join(serr, herr)
	})
	return a, nil
}

// Wait blocks until the daemon has stopped (its context ended, or a part
// of it failed), then closes the store.
func (a *App) Wait() error {
	err := a.g.Wait()
	a.closeAll()
	a.log.Info("stopped")
	return err
}

func (a *App) closeAll() {
	if a.smtpLn != nil {
		a.smtpLn.Close()
	}
	if a.httpLn != nil {
		a.httpLn.Close()
	}
	if c, ok := a.sender.(interface{ Close() error }); ok {
		c.Close()
	}
	if a.db != nil {
		a.db.Close()
	}
}

// sendYield is the pipeline's SendYield for --send-yield, where 0 means
// never (the pipeline's zero is its default).
func sendYield(d Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return time.Duration(d)
}

// SMTPAddr and HTTPAddr are the bound listener addresses.
func (a *App) SMTPAddr() string { return a.smtpLn.Addr().String() }
func (a *App) HTTPAddr() string { return a.httpLn.Addr().String() }

// AdminKey is the admin API key in use.
func (a *App) AdminKey() string { return a.adminKey }

// DB is the store (for tests that check what was stored).
func (a *App) DB() *store.DB { return a.db }

// queue adapts the pipeline to smtpd.Queue.
type queue struct{ p *pipeline.Pipeline }

func (q queue) Accept(ctx context.Context, env smtpd.Envelope, data []byte) (string, error) {
	return q.p.Accept(ctx, pipeline.Envelope(env), data)
}

func (q queue) Busy() bool { return q.p.Busy() }

// adminKey returns the configured key, or the one kept in the data
// directory, generating it on first start.
func adminKey(cfg Config, log *slog.Logger) (string, error) {
	if cfg.AdminKey != "" {
		return cfg.AdminKey, nil
	}
	path := cfg.adminKeyPath()
	if key, err := savedAdminKey(cfg); err != nil || key != "" {
		if key != "" {
			log.Info("admin API key read from file", "file", path)
		}
		return key, err
	}
	raw := make([]byte, 24)
	rand.Read(raw)
	key := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", err
	}
	log.Info("generated an admin API key; send it as X-Api-Key", "key", key, "file", path)
	return key, nil
}

// dbPath and adminKeyPath are where the daemon keeps its database and its
// admin key: in the data directory.
func (c Config) dbPath() string       { return filepath.Join(c.Data, "invited.db") }
func (c Config) adminKeyPath() string { return filepath.Join(c.Data, "admin.key") }

// savedAdminKey reads the admin key kept in the data directory: "" if
// there is none.
func savedAdminKey(cfg Config) (string, error) {
	b, err := os.ReadFile(cfg.adminKeyPath())
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}
