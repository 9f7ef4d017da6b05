package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/invited/invited/internal/membudget"
	"github.com/invited/invited/pipeline"
	"github.com/invited/invited/store"
)

// metrics serves GET /metrics: the daemon's own figures, read when
// scraped (nothing on the hot paths), plus Go's and the process's.
func metrics(db *store.DB, pl *pipeline.Pipeline, mem map[string]*membudget.Budget) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{db: db, pl: pl, mem: mem})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

type collector struct {
	db  *store.DB
	pl  *pipeline.Pipeline
	mem map[string]*membudget.Budget // by part
}

var (
	descAccepted  = prometheus.NewDesc("invited_smtp_accepted_total", "Messages the SMTP listener stored and answered 250 since start.", nil, nil)
	descQueue     = prometheus.NewDesc("invited_queue_jobs", "Jobs waiting in a pipeline stage's queue.", []string{"stage"}, nil)
	descHolding   = prometheus.NewDesc("invited_burst_holding", "1 while parsing holds back for an SMTP burst.", nil, nil)
	descHolds     = prometheus.NewDesc("invited_burst_holds_total", "SMTP bursts parsing held back for since start.", nil, nil)
	descYielding  = prometheus.NewDesc("invited_sends_yielding", "1 while outbound mail goes out a few at a time and at most 100 a second, for the inbound stages are overloaded (a burst held back, or every parse worker busy with a backlog).", nil, nil)
	descCommits   = prometheus.NewDesc("invited_store_commits_total", "Write transactions committed (each one fsync) since start.", nil, nil)
	descCommitted = prometheus.NewDesc("invited_store_committed_functions_total", "Updates those transactions held: over commits, how many share each fsync.", nil, nil)
	descWrites    = prometheus.NewDesc("invited_store_page_writes_total", "Page writes (runs of contiguous pages, meta included) those transactions made.", nil, nil)
	descWriter    = prometheus.NewDesc("invited_store_writer_seconds_total", "Time the store's one committer spent running updates (run) and writing and syncing transactions (commit); its rate near 1 means writes wait for it.", []string{"part"}, nil)
	descFile      = prometheus.NewDesc("invited_store_file_bytes", "Size of the database file.", nil, nil)
	descReleased  = prometheus.NewDesc("invited_store_mapped_released_total", "Times the database's mapped pages passed their budget and were left to the page cache.", nil, nil)
	descMemory    = prometheus.NewDesc("invited_message_memory_bytes", "Memory budgets for messages over 64 KiB being received (part listener, three quarters of --max-message-memory) and read again (part stages, a quarter): size, held now, and the most held at once since start.", []string{"part", "what"}, nil)
	descMemWait   = prometheus.NewDesc("invited_message_memory_waiting", "Messages over 64 KiB waiting for memory now.", []string{"part"}, nil)
	descMemRefuse = prometheus.NewDesc("invited_message_memory_refused_total", "Large messages refused memory since start: the listener answered 451 (the sender retries), or a stage put its job off for a moment.", []string{"part"}, nil)
	descCounts    = prometheus.NewDesc("invited_system_count", "The store's system counters (what GET /system/statistics reports).", []string{"what"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAccepted, descQueue, descHolding, descHolds, descYielding, descCommits, descCommitted, descWrites, descWriter, descFile, descReleased, descMemory, descMemWait, descMemRefuse, descCounts} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter(descAccepted, c.pl.Accepted())
	for _, s := range pipeline.Stages {
		gauge(descQueue, c.db.QueueLen(s), s)
	}
	holding := int64(0)
	if c.pl.Holding() {
		holding = 1
	}
	gauge(descHolding, holding)
	counter(descHolds, c.pl.Holds())
	yielding := int64(0)
	if c.pl.SendsYielding() {
		yielding = 1
	}
	gauge(descYielding, yielding)
	counter(descCommits, c.db.Commits())
	counter(descCommitted, c.db.Committed())
	counter(descWrites, c.db.Writes())
	run, commit := c.db.WriterTime()
	ch <- prometheus.MustNewConstMetric(descWriter, prometheus.CounterValue, run.Seconds(), "run")
	ch <- prometheus.MustNewConstMetric(descWriter, prometheus.CounterValue, commit.Seconds(), "commit")
	counter(descReleased, c.db.Released())
	for part, b := range c.mem {
		if b == nil {
			continue
		}
		m := b.Stats()
		gauge(descMemory, m.Max, part, "max")
		gauge(descMemory, m.Held, part, "held")
		gauge(descMemory, m.Peak, part, "peak")
		gauge(descMemWait, m.Waiting, part)
		counter(descMemRefuse, int64(m.Refused), part)
	}
	if n, err := c.db.Size(); err == nil {
		gauge(descFile, n)
	}
	var s store.Counters
	if err := c.db.View(func(tx *store.Tx) (err error) { s, err = tx.SystemStats(); return err }); err == nil {
		for what, v := range map[string]int64{
			"organizers": s.Organizers, "events": s.Events, "attendees": s.Attendees, "invited": s.Invited, "invites_sent": s.InvitesSent,
			"delegated": s.Delegated,
			"accepted":  s.Accepted, "declined": s.Declined, "tentative": s.Tentative, "pending": s.Pending,
			"updates_sent": s.UpdatesSent, "cancels_sent": s.CancelsSent, "send_failed": s.SendFailed,
		} {
			gauge(descCounts, v, what)
		}
	}
}
