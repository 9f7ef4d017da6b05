package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/invited/invited/itip"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// apiClient calls the daemon's HTTP API with the admin key.
type apiClient struct {
	base string
	key  string
	hc   *http.Client
}

func newAPIClient(addr, key string) *apiClient {
	tr := &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &apiClient{base: "http://" + addr, key: key, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// do sends a request and decodes a 2xx JSON answer into out (if not nil).
func (a *apiClient) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Api-Key", a.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &httpError{Method: method, Path: path, Status: resp.StatusCode, Body: itip.Truncate(string(b), 200)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

func (a *apiClient) get(ctx context.Context, path string, out any) error {
	return a.do(ctx, http.MethodGet, path, nil, out)
}

// getDiscard makes a GET and reads the whole answer, for latency
// measurements.
func (a *apiClient) getDiscard(ctx context.Context, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Api-Key", a.key)
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, &httpError{Method: http.MethodGet, Path: path, Status: resp.StatusCode}
	}
	return int(n), nil
}

// waitHealthy asks once: the daemon names its listeners only once they
// are bound, so the request waits in the listen queue until it serves.
func (a *apiClient) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.get(ctx, "/healthz", nil); err != nil {
		return fmt.Errorf("daemon not healthy: %w", err)
	}
	return nil
}

// httpError is a non-2xx answer.
type httpError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d %s", e.Method, e.Path, e.Status, e.Body)
}

// Answers of the API, the fields the bench reads.

type messageJSON struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

type statsJSON struct {
	AttendeeCount int64 `json:"attendee_count"`
	InvitesSent   int64 `json:"invites_sent"`
	Confirmed     int64 `json:"rsvp_confirmed"`
}

type countsJSON struct {
	Events        int64 `json:"events"`
	AttendeeCount int64 `json:"attendee_count"`
	InvitesSent   int64 `json:"invites_sent"`
}

type eventsJSON struct {
	Events []struct {
		UID         string `json:"uid"`
		OriginalUID string `json:"original_uid"`
	} `json:"events"`
}

type invitee struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

type invitesJSON struct {
	Queued   int `json:"queued"`
	Rejected int `json:"rejected"`
}

// systemCounts reads GET /system/statistics.
func (a *apiClient) systemCounts(ctx context.Context) (countsJSON, error) {
	var c countsJSON
	err := a.get(ctx, "/system/statistics", &c)
	return c, err
}

// waitMessage polls GET /admin/messages/{id} until the message left the
// queued state and returns its status.
func (a *apiClient) waitMessage(ctx context.Context, id string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		var m messageJSON
		if err := a.get(ctx, "/admin/messages/"+id, &m); err != nil {
			return "", err
		}
		if m.Status != "queued" {
			return m.Status, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("message %s still queued after %v", id, timeout)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// commitCount is the daemon's store commits and the updates they held, as
// its /metrics says.
type commitCount struct {
	at               time.Time
	commits, updates float64
	writes           float64 // page writes
	run, write       float64 // the committer's busy seconds, see store.DB.WriterTime
	queues           map[string]float64
}

func (a *apiClient) commits(ctx context.Context) (commitCount, error) {
	c := commitCount{at: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/metrics", nil)
	if err != nil {
		return c, err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	resp, err := a.hc.Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, &httpError{Method: "GET", Path: "/metrics", Status: resp.StatusCode}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return c, fmt.Errorf("/metrics: %w", err)
	}
	value := func(name string) float64 {
		if f := fams[name]; f != nil && len(f.Metric) == 1 && f.Metric[0].Counter != nil {
			return f.Metric[0].Counter.GetValue()
		}
		return 0
	}
	c.commits, c.updates = value("invited_store_commits_total"), value("invited_store_committed_functions_total")
	c.writes = value("invited_store_page_writes_total")
	c.queues = map[string]float64{}
	if f := fams["invited_queue_jobs"]; f != nil {
		for _, m := range f.Metric {
			if len(m.Label) == 1 && m.Gauge != nil {
				c.queues[m.Label[0].GetValue()] = m.Gauge.GetValue()
			}
		}
	}
	if f := fams["invited_store_writer_seconds_total"]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				switch {
				case l.GetName() != "part" || m.Counter == nil:
				case l.GetValue() == "run":
					c.run = m.Counter.GetValue()
				case l.GetValue() == "commit":
					c.write = m.Counter.GetValue()
				}
			}
		}
	}
	return c, nil
}

// plus is c grown by what the counters grew from c0 to c1, time included
// (queue lengths are not summed).
func (c commitCount) plus(c0, c1 commitCount) commitCount {
	c.at = c.at.Add(c1.at.Sub(c0.at))
	c.commits += c1.commits - c0.commits
	c.updates += c1.updates - c0.updates
	c.writes += c1.writes - c0.writes
	c.run += c1.run - c0.run
	c.write += c1.write - c0.write
	return c
}

// CommitFigure is how the store committed over a measurement.
type CommitFigure struct {
	PerSecond         float64 `json:"commits_per_second"`
	UpdatesPerCommit  float64 `json:"updates_per_commit"`
	UpdatesPerMessage float64 `json:"updates_per_message,omitempty"`
	WritesPerCommit   float64 `json:"page_writes_per_commit"`
	WritesPerMessage  float64 `json:"page_writes_per_message,omitempty"`
	// The fractions of the time the store's committer was running updates
	// (WriterRun) and writing and syncing them (WriterCommit).
	WriterRun    float64 `json:"writer_run"`
	WriterCommit float64 `json:"writer_commit"`
}

// commitsBetween is the CommitFigure from a to b, with per-message
// figures for n messages (0: none).
func commitsBetween(a, b commitCount, n int64) CommitFigure {
	var f CommitFigure
	secs := b.at.Sub(a.at).Seconds()
	if d := b.commits - a.commits; d > 0 {
		f.PerSecond = d / secs
		f.UpdatesPerCommit = (b.updates - a.updates) / d
		f.WritesPerCommit = (b.writes - a.writes) / d
	}
	if secs > 0 {
		f.WriterRun, f.WriterCommit = (b.run-a.run)/secs, (b.write-a.write)/secs
	}
	if n > 0 {
		f.UpdatesPerMessage = (b.updates - a.updates) / float64(n)
		f.WritesPerMessage = (b.writes - a.writes) / float64(n)
	}
	return f
}

func (f CommitFigure) String() string {
	return fmt.Sprintf("%.0f/s × %.1f (%.0f pages), busy %.0f%%+%.0f%%", f.PerSecond, f.UpdatesPerCommit, f.WritesPerCommit, 100*f.WriterRun, 100*f.WriterCommit)
}
