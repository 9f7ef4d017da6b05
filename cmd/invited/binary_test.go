package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/invited/invited/internal/daemonproc"
	"github.com/invited/invited/internal/dnstest"
	"github.com/invited/invited/pipeline"
	"github.com/invited/invited/store"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildBinary builds the invited command once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "invited-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "invited")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// daemon is the built binary running as a child process.
type daemon struct{ *daemonproc.Process }

// startDaemon runs `invited serve` on 127.0.0.1:0 ports over dataDir and
// waits for its listeners.
func startDaemon(t *testing.T, bin, dataDir string, extra ...string) *daemon {
	t.Helper()
	args := append([]string{"serve", "--data", dataDir, "--domain", testDomain, "--smtp", "127.0.0.1:0",
		"--http", "127.0.0.1:0", "--admin-key", "test-admin-key"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "INVITED_LOG_LEVEL=info")
	p, err := daemonproc.Start(cmd, dataDir, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return &daemon{p}
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.Stop(30 * time.Second); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, d.Tail())
	}
}

// TestCrash_KillLosesNothing streams organizer requests and attendee
// replies at the built daemon, kills it with SIGKILL at a random point,
// restarts it, and checks that every message that got a 250 was applied
// exactly once: present, and counted once in every statistic.
func TestCrash_KillLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the daemon")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	d := startDaemon(t, bin, dir, "--auth-policy", "none", "--event-limit", "-1") // no DNS here: durability is the point

	// One registered event for the replies to answer.
	request := readTestdata(t, "google-request-inline-textcalendar.eml")
	mustSend(t, d.SMTP, "alice@example.org", []string{"create@" + testDomain}, []byte(request))
	uid := eventUID(t, d, "alice@example.org", "69d4c40b4a274636bf23517938df9673@example.org")
	reply := readTestdata(t, "google-reply-accepted-to-exchange-organizer.ics")
	reply = setProp(reply, "UID", uid)
	organizerICS := setProp(readTestdata(t, "google-request-seq0-before-cancel.ics"), "ORGANIZER", "mailto:crash@example.org")

	var (
		mu      sync.Mutex
		acked   = map[string]string{} // key → kind
		stopped = make(chan struct{})
		wg      sync.WaitGroup
	)
	killAt := 40 + rand.IntN(200)
	for g := range 4 {
		wg.Go(func() {
			c, err := smtp.Dial(d.SMTP)
			if err != nil {
				return
			}
			defer c.Close()
			for n := 0; ; n++ {
				select {
				case <-stopped:
					return
				default:
				}
				var from, to, key string
				var raw []byte
				if n%2 == 0 {
					key = fmt.Sprintf("crash-%d-%d@example.org", g, n)
					from, to = "crash@example.org", "create@"+testDomain
					ics := setProp(organizerICS, "UID", key)
					raw = wrapICS(from, to, "Invitation", "REQUEST", ics)
				} else {
					key = fmt.Sprintf("shared-%d-%d@example.net", g, n)
					from, to = key, "rsvp@"+testDomain
					ics := strings.Replace(reply, "mailto:karim@example.com", "mailto:"+key, 1)
					raw = wrapICS(from, to, "Accepted", "REPLY", ics)
				}
				if err := c.SendMail(from, []string{to}, strings.NewReader(string(raw))); err != nil {
					return // the daemon died mid-conversation: not acked
				}
				mu.Lock()
				acked[key] = from
				if len(acked) == killAt {
					d.Cmd.Process.Kill()
				}
				mu.Unlock()
			}
		})
	}
	<-d.Exited()
	close(stopped)
	wg.Wait()
	t.Logf("killed after %d acknowledged messages", len(acked))

	d = startDaemon(t, bin, dir, "--auth-policy", "none", "--event-limit", "-1")
	var requests, replies []string
	for k := range acked {
		if strings.HasPrefix(k, "crash-") {
			requests = append(requests, k)
		} else {
			replies = append(replies, k)
		}
	}
	eventually(t, "every acknowledged message applied after restart, and its notices sent", func() bool {
		var s statsResp
		api(t, d, "GET", "/event/"+uid+"/statistics", nil, &s)
		var ev struct{ Events []any }
		api(t, d, "GET", "/organizer/crash@example.org/events?limit=500", nil, &ev)
		if s.AttendeeCount < int64(len(replies)) || len(ev.Events) < len(requests) {
			return false
		}
		// The "event registered" notices go out after their events are
		// applied: a stop before that would leave them queued for the
		// next start, which the check of the queues below would take for
		// work lost.
		m := scrapeMetrics(t, d)
		for _, st := range pipeline.Stages {
			if metricValue(t, m, `invited_queue_jobs{stage="`+st+`"}`) != 0 {
				return false
			}
		}
		return true
	})
	d.stop(t)

	db, err := store.Open(filepath.Join(dir, "invited.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range pipeline.Stages {
		if n := db.QueueLen(s); n != 0 {
			t.Errorf("queue %s still holds %d jobs", s, n)
		}
	}
	err = db.View(func(tx *store.Tx) error {
		for _, k := range requests {
			if _, err := tx.EventByOriginalUID(k); err != nil {
				t.Errorf("acknowledged REQUEST %s lost: %v", k, err)
			}
		}
		var count store.Counters
		err := tx.Attendees(uid, "", func(a *store.Attendee) (bool, error) {
			count.Attendees++
			count.AddStatus(a.Status, 1)
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, k := range replies {
			if a, err := tx.Attendee(uid, k); err != nil || a.Status != store.PartAccepted {
				t.Errorf("acknowledged REPLY from %s lost: %v %+v", k, err, a)
			}
		}
		got, err := tx.EventStats(uid)
		if err != nil {
			return err
		}
		if got.Attendees != count.Attendees || got.Accepted != count.Accepted || got.Pending != count.Pending {
			t.Errorf("event statistics %+v, recount %+v", got, count)
		}
		var indexed int64
		for cursor := ""; ; {
			evs, next, err := tx.OrganizerEvents("crash@example.org", cursor, 1000)
			if err != nil {
				return err
			}
			indexed += int64(len(evs))
			if cursor = next; next == "" {
				break
			}
		}
		org, err := tx.OrganizerStats("crash@example.org")
		if err != nil {
			return err
		}
		if org.Events != indexed || indexed < int64(len(requests)) {
			t.Errorf("organizer counts %d events, index holds %d, %d acknowledged", org.Events, indexed, len(requests))
		}
		sys, err := tx.SystemStats()
		if err != nil {
			return err
		}
		if sys.Events != indexed+1 || sys.Organizers != 2 {
			t.Errorf("system statistics %+v, want %d events and 2 organizers", sys, indexed+1)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the database after the crash: %v", err)
	}
}

// TestInterop_PythonSmtplib drives the built daemon with Python's smtplib,
// an SMTP client that is not ours.
func TestInterop_PythonSmtplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is needed (.ci/run installs it)")
		}
		t.Skip("python3 not installed")
	}
	bin := buildBinary(t)
	d := startDaemon(t, bin, t.TempDir(), "--auth-policy", "none")
	script := `
import smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
raw = open(sys.argv[2], "rb").read()
s = smtplib.SMTP(host, int(port), timeout=10)
code, _ = s.ehlo("client.example")
assert code == 250, code
refused = s.sendmail("alice@example.org", ["create@invite.test"], raw)
assert refused == {}, refused
try:
    s.sendmail("alice@example.org", ["postmaster@invite.test"], raw)
    print("unknown mailbox accepted"); sys.exit(1)
except smtplib.SMTPRecipientsRefused as e:
    code = e.recipients["postmaster@invite.test"][0]
    assert code == 550, code
try:
    s.sendmail("alice@example.org", ["someone@example.com"], raw)
    print("relay accepted"); sys.exit(1)
except smtplib.SMTPRecipientsRefused as e:
    assert e.recipients["someone@example.com"][0] == 550
s.quit()
print("ok")
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", script, d.SMTP, "../../testdata/imip/google-request-inline-textcalendar.eml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("python smtplib: %v\n%s\n%s", err, out, d.Tail())
	}
	eventUID(t, d, "alice@example.org", "69d4c40b4a274636bf23517938df9673@example.org")
	d.stop(t)
}

// HTTPAddr and AdminKey make a daemon a target of the API helpers.
func (d *daemon) HTTPAddr() string { return d.HTTP }
func (d *daemon) AdminKey() string { return "test-admin-key" }

// TestBinary_AlignedPolicyOverDNS runs the built daemon under the aligned
// policy, asking a DNS server on loopback as it would ask the system's:
// a REQUEST whose sender's SPF allows 127.0.0.1 registers, and one that
// says it is from the same organizer but comes from another domain's
// sender, not allowed to send from here, is rejected and registers nothing.
func TestBinary_AlignedPolicyOverDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dns, err := dnstest.Serve(dnstest.Loopback())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	bin := buildBinary(t)
	d := startDaemon(t, bin, t.TempDir(), "--auth-policy", "aligned", "--dns", dns.Addr())

	const orig = "69d4c40b4a274636bf23517938df9673@example.org"
	request := readTestdata(t, "google-request-inline-textcalendar.eml")
	forged := mustSend(t, d.SMTP, "mallory@evil.example", []string{"create@" + testDomain},
		[]byte(strings.Replace(request, orig, "forged-"+orig, 1)))
	mustSend(t, d.SMTP, "alice@example.org", []string{"create@" + testDomain}, []byte(request))
	eventUID(t, d, "alice@example.org", orig)

	var rec struct {
		Status string `json:"status"`
		Notes  []struct{ Text string }
	}
	eventually(t, "the forged request rejected", func() bool {
		api(t, d, "GET", "/admin/messages/"+forged, nil, &rec)
		return rec.Status != "queued" && rec.Status != ""
	})
	if rec.Status != "rejected" || len(rec.Notes) == 0 || !strings.Contains(rec.Notes[len(rec.Notes)-1].Text, "not authenticated") {
		t.Errorf("forged request: %+v, want rejected as not authenticated", rec)
	}
	var evs eventsResp
	api(t, d, "GET", "/organizer/alice@example.org/events?limit=100", nil, &evs)
	if len(evs.Events) != 1 || evs.Events[0].OriginalUID != orig {
		t.Errorf("alice's events: %+v, want only %s", evs.Events, orig)
	}
	d.stop(t)
}
