package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Result is everything one run measured; it is written as JSON to -out.
type Result struct {
	Command  []string  `json:"command"`
	Git      string    `json:"git,omitempty"`
	Go       string    `json:"go"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Host     Host      `json:"host"`
	Options  Options   `json:"options"`
	Ceilings Ceilings  `json:"ceilings"`
	// Accept is the daemon's durable SMTP accept rate per session count.
	Accept    []AcceptFigure  `json:"accept"`
	EndToEnd  *E2EFigure      `json:"end_to_end,omitempty"`
	Fanout    *FanoutFigure   `json:"fanout,omitempty"`
	Reads     []ReadFigure    `json:"http_reads"`
	Resources *ResourceFigure `json:"resources,omitempty"`
	// Large is the daemon's memory with large messages, clients declaring
	// their size or not.
	Large    []LargeFigure `json:"large,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Host describes the machine.
type Host struct {
	CPUs int `json:"cpus"`
	// GOMAXPROCS is the bench's own: the daemon and the go-smtp sink run
	// Go code on one thread more unless GOMAXPROCS is set (package tune).
	GOMAXPROCS int    `json:"gomaxprocs"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Dir        string `json:"dir"` // where the databases were written
	// LoadBefore and LoadAfter are the 1-minute load averages: other work
	// on the machine makes every figure noisy.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// Ceilings are what the machine and the daemon's dependencies can do.
type Ceilings struct {
	SMTP []SMTPFigure `json:"smtp_discard"`
	Bolt []BoltFigure `json:"bolt"`
}

// Latency summarizes a set of durations, in milliseconds.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

func latencyOf(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	q := func(p float64) float64 { return ms(s[int(p*float64(len(s)-1)+0.5)]) }
	return Latency{N: len(s), P50: q(0.50), P99: q(0.99), Max: ms(s[len(s)-1]), Mean: ms(sum / time.Duration(len(s)))}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// SMTPFigure is a closed-loop SMTP run against the discarding server.
type SMTPFigure struct {
	Sessions int `json:"sessions"`
	// Rounds is how many measurements the figure sums up (see
	// AcceptFigure.Rounds).
	Rounds    int     `json:"rounds"`
	Messages  int64   `json:"messages"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	Latency   Latency `json:"latency"`
	// The discarding server's CPU: cores used, and per message.
	ServerCores float64 `json:"server_cores"`
	CPUPerMsgUS float64 `json:"cpu_us_per_msg"`
}

func smtpFigure(r loadResult) SMTPFigure {
	return SMTPFigure{Sessions: r.Sessions, Messages: r.OK, Seconds: r.Elapsed.Seconds(), PerSecond: r.Rate(), Latency: latencyOf(r.Latencies)}
}

// BoltFigure is a run of durable bbolt writes.
type BoltFigure struct {
	Mode            string  `json:"mode"` // group-commit or update-per-write
	Producers       int     `json:"producers"`
	Writes          int64   `json:"writes"`
	Seconds         float64 `json:"seconds"`
	PerSecond       float64 `json:"per_second"`
	WritesPerCommit float64 `json:"writes_per_commit"`
	Latency         Latency `json:"latency"`
}

// AcceptFigure is the daemon's durable accept rate at one concurrency.
type AcceptFigure struct {
	// Mode is "default" (the daemon as configured: parsing holds back
	// while arrivals outpace it and the queue absorbs the burst) or
	// "no-hold" (--burst-rate=-1: every message parsed, registered and
	// answered while the others arrive).
	Mode     string `json:"mode"`
	Sessions int    `json:"sessions"`
	// Rounds is how many measurements the figure sums up: at the most
	// sessions, in default mode, the go-smtp ceiling and the daemon take
	// turns (-rounds), each -measure long, and VsSMTP is the ratio of
	// their totals. PerRound lists each turn.
	Rounds    int           `json:"rounds"`
	PerRound  []RoundFigure `json:"per_round,omitempty"`
	Accepted  int64         `json:"accepted"`
	Deferred  int64         `json:"deferred_4xx"`
	Errors    int64         `json:"errors"`
	Seconds   float64       `json:"seconds"`
	PerSecond float64       `json:"per_second"`
	Latency   Latency       `json:"latency"` // MAIL FROM to the 250 after DATA
	// Ratios to the ceilings measured in the same run.
	VsSMTP        float64 `json:"ratio_to_smtp_ceiling"`
	VsBolt        float64 `json:"ratio_to_bolt_group_commit"`
	BoltProducers int     `json:"bolt_producers_compared"`
	// DaemonCores is the CPU the daemon used (cores, averaged), which
	// includes working off the backlog the run builds up.
	DaemonCores  float64 `json:"daemon_cores"`
	CPUPerMsgUS  float64 `json:"daemon_cpu_us_per_message"`
	MessageBytes int     `json:"message_bytes"`
	// Commits is how the store committed meanwhile (accepts, and any
	// pipeline work done alongside).
	Commits CommitFigure `json:"commits"`
}

// roundsNote marks a figure that sums up more than one measurement.
func roundsNote(n int) string {
	if n > 1 {
		return fmt.Sprintf(" ×%d", n)
	}
	return ""
}

// RoundFigure is one turn of go-smtp and the daemon (go-smtp first in
// odd turns, the daemon in even ones).
type RoundFigure struct {
	SMTP    float64 `json:"smtp_per_second"`
	Invited float64 `json:"invited_per_second"`
	Ratio   float64 `json:"ratio"`
}

// E2EFigure is the time from the 250 to the message's state being applied.
type E2EFigure struct {
	OfferedPerSecond float64 `json:"offered_per_second"`
	Seconds          float64 `json:"seconds"`
	Sent             int64   `json:"sent"`
	Accepted         int64   `json:"accepted"`
	Deferred         int64   `json:"deferred_4xx"`
	Errors           int64   `json:"errors"`
	Applied          int64   `json:"applied"`
	Rejected         int64   `json:"rejected"` // applied, but as rejected
	TimedOut         int64   `json:"timed_out"`
	AppliedPerSecond float64 `json:"applied_per_second"`
	Latency          Latency `json:"latency"`        // 250 to status != queued
	AcceptLatency    Latency `json:"accept_latency"` // MAIL FROM to 250
	PollsPerSecond   float64 `json:"polls_per_second"`
	PollIntervalMS   float64 `json:"poll_interval_ms"`
	DaemonCores      float64 `json:"daemon_cores"`

	Max *MaxAppliedFigure `json:"max_applied,omitempty"`
}

// MaxAppliedFigure is the applied rate when sending as fast as the
// pipeline applies, with at most Window messages accepted but not applied.
type MaxAppliedFigure struct {
	What             string       `json:"what"`
	Sessions         int          `json:"sessions"`
	Window           int          `json:"window"`
	Seconds          float64      `json:"seconds"`
	Accepted         int64        `json:"accepted"`
	Applied          int64        `json:"applied"`
	AppliedPerSecond float64      `json:"applied_per_second"`
	AcceptPerSecond  float64      `json:"accept_per_second_compared"` // the durable accept rate of the turns around it
	AcceptAround     []float64    `json:"accept_around"`              // each turn's accept rate, before and after
	AcceptStep2      float64      `json:"accept_per_second_step2"`    // the best of step 2, for reference
	RatioToAccept    float64      `json:"ratio_to_accept"`
	DaemonCores      float64      `json:"daemon_cores"`
	CPUPerMsgUS      float64      `json:"daemon_cpu_us_per_message"` // parse to relay, per applied message
	Commits          CommitFigure `json:"commits"`
}

// FanoutFigure is one POST /event/{uid}/invites fan-out to the relay.
type FanoutFigure struct {
	Invites          int          `json:"invites"`
	PostSeconds      float64      `json:"post_seconds"`    // all POSTs answered
	CreatedSeconds   float64      `json:"created_seconds"` // attendee_count reached Invites
	SentSeconds      float64      `json:"sent_seconds"`    // the relay counted Invites messages
	InvitesPerSecond float64      `json:"invites_per_second"`
	CreatedPerSecond float64      `json:"created_per_second"`
	DaemonCores      float64      `json:"daemon_cores"`
	Commits          CommitFigure `json:"commits"`
	// Replies is a max applied run of the invited attendees' acceptances.
	Replies *MaxAppliedFigure `json:"max_applied_replies,omitempty"`
	// Seed is the same for the big event of the HTTP read figures.
	Seed *FanoutFigure `json:"seed_big_event,omitempty"`
}

// ReadFigure is the latency of one HTTP GET, sequential requests.
type ReadFigure struct {
	What      string  `json:"what"`
	Path      string  `json:"path"`
	Attendees int     `json:"attendees,omitempty"`
	Events    int64   `json:"organizer_events,omitempty"`
	Requests  int     `json:"requests"`
	Latency   Latency `json:"latency"`
	Bytes     int     `json:"answer_bytes"`
}

// ResourceFigure is memory and disk.
type ResourceFigure struct {
	PeakRSS       int64          `json:"peak_rss_bytes"`  // VmHWM of the main daemon
	PeakDuring    string         `json:"peak_rss_during"` // what the bench did when VmHWM last rose
	MaxSampledRSS int64          `json:"max_sampled_rss_bytes"`
	MaxAnon       int64          `json:"max_rss_anon_bytes"` // Go heap and stacks
	MaxFile       int64          `json:"max_rss_file_bytes"` // mostly the database mmap
	AcceptPeakRSS int64          `json:"accept_daemons_peak_rss_bytes"`
	DBSize        int64          `json:"db_size_bytes"`
	DBAllocated   int64          `json:"db_allocated_bytes"`
	EventsAdded   int64          `json:"events_added"`
	BytesPerEvent int64          `json:"bytes_per_event"`
	Attendees     int64          `json:"attendees_added"`
	BytesPerAtt   int64          `json:"bytes_per_attendee"`
	PerEventSize  int64          `json:"bytes_per_event_file_size"`
	PerAttSize    int64          `json:"bytes_per_attendee_file_size"`
	Buckets       []BucketFigure `json:"buckets,omitempty"`
	BucketsInUse  int64          `json:"buckets_in_use_bytes"`
}

// LargeFigure is a fresh daemon taking large messages from many sessions
// at once: how many, how fast, and its resident high-water mark.
type LargeFigure struct {
	DeclaredSize bool    `json:"declared_size"` // MAIL FROM said SIZE=
	Sessions     int     `json:"sessions"`
	MessageBytes int     `json:"message_bytes"`
	Accepted     int64   `json:"accepted"`
	Deferred     int64   `json:"deferred_4xx"`
	Errors       int64   `json:"errors"`
	Seconds      float64 `json:"seconds"`
	MiBPerSecond float64 `json:"mib_per_second"`
	Latency      Latency `json:"latency_ms"`
	PeakRSS      int64   `json:"peak_rss_bytes"`
}

// BucketFigure is one top-level bucket of the daemon's database after the
// run.
type BucketFigure struct {
	Name  string `json:"name"`
	Keys  int    `json:"keys"`
	InUse int64  `json:"in_use_bytes"`
}

// progress prints what the bench is doing to stderr.
type progress struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	step  string
	now   string // the step and its last detail, see Now
	start time.Time
	last  int
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// Step starts step n of total.
func (p *progress) Step(n, total int, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked()
	p.step = fmt.Sprintf("[%d/%d] %s", n, total, what)
	p.now = p.step
	p.start, p.last = time.Now(), 0
	p.printLocked("")
}

// Update shows a detail of the current step: in place on a terminal, at
// most every few seconds in a log.
func (p *progress) Update(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	detail := fmt.Sprintf(format, args...)
	p.now = p.step + " (" + detail + ")"
	el := int(time.Since(p.start).Seconds())
	if !p.tty && el-p.last < 5 {
		return
	}
	p.last = el
	p.printLocked(detail)
}

// Now is what the bench is doing: the step and its last detail.
func (p *progress) Now() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.now
}

// Note prints a line that stays.
func (p *progress) Note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "  "+format+"\n", args...)
	p.printLocked("")
}

// Done ends the current step.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked()
	p.step, p.now = "", ""
}

func (p *progress) printLocked(detail string) {
	if p.step == "" {
		return
	}
	line := fmt.Sprintf("%s… %.1f s", p.step, time.Since(p.start).Seconds())
	if detail != "" {
		line += " (" + detail + ")"
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) endLocked() {
	if p.step == "" {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s… done in %.1f s\n", p.step, time.Since(p.start).Seconds())
	} else {
		fmt.Fprintf(p.w, "%s… done in %.1f s\n", p.step, time.Since(p.start).Seconds())
	}
	p.last = 0
}

// writeJSON writes r to path.
func writeJSON(path string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// printTable writes the human-readable report.
func printTable(w io.Writer, r *Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	section := func(title string) {
		tw.Flush()
		fmt.Fprintf(w, "\n%s\n", title)
	}
	fmt.Fprintf(w, "invited-bench %s  (%s, %d CPUs, %s/%s, data in %s, load average %.1f before, %.1f after)\n",
		r.Git, r.Go, r.Host.CPUs, r.Host.OS, r.Host.Arch, r.Host.Dir, r.Host.LoadBefore, r.Host.LoadAfter)

	size := fmt.Sprintf("%.1f KiB", float64(r.Options.MessageBytes)/1024) // -size
	clients := "SMTP clients pipeline MAIL, RCPT and DATA (RFC 2920)"
	if r.Options.Lockstep {
		clients = "SMTP clients wait for each reply (-lockstep)"
	}
	section("1. Ceilings (same machine, same run; go-smtp in a process of its own; " + clients + ")")
	fmt.Fprintln(tw, "what\tconcurrency\trate/s\tp50 ms\tp99 ms\tserver cores\tCPU µs/msg\tper commit\t")
	for _, f := range r.Ceilings.SMTP {
		fmt.Fprintf(tw, "go-smtp discard, %s\t%d sessions%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.0f\t\t\n", size, f.Sessions, roundsNote(f.Rounds), f.PerSecond, f.Latency.P50, f.Latency.P99, f.ServerCores, f.CPUPerMsgUS)
	}
	for _, f := range r.Ceilings.Bolt {
		fmt.Fprintf(tw, "bbolt %s, %s\t%d producers\t%.0f\t%.2f\t%.2f\t\t\t%.1f\t\n", f.Mode, size, f.Producers, f.PerSecond, f.Latency.P50, f.Latency.P99, f.WritesPerCommit)
	}

	if len(r.Accept) > 0 {
		section("2. Durable SMTP accept (REQUESTs to create@, fsync on; default: parsing holds back while arrivals outpace it; no-hold: --burst-rate=-1)")
		fmt.Fprintln(tw, "mode\tsessions\taccepted/s\t÷ go-smtp\t÷ bbolt group\tp50 ms\tp99 ms\t4xx\terrors\tdaemon cores\tCPU µs/msg\tcommits × updates (page writes), writer busy run+commit\t")
		for _, f := range r.Accept {
			vsBolt := pct(f.VsBolt)
			if f.BoltProducers > 0 {
				vsBolt += fmt.Sprintf(" (P=%d)", f.BoltProducers)
			}
			fmt.Fprintf(tw, "%s\t%d%s\t%.0f\t%s\t%s\t%.2f\t%.2f\t%d\t%d\t%.2f\t%.0f\t%s\t\n", f.Mode, f.Sessions, roundsNote(f.Rounds), f.PerSecond, pct(f.VsSMTP), vsBolt,
				f.Latency.P50, f.Latency.P99, f.Deferred, f.Errors, f.DaemonCores, f.CPUPerMsgUS, f.Commits)
		}
		tw.Flush()
		for _, f := range r.Accept {
			if len(f.PerRound) == 0 {
				continue
			}
			turns := make([]string, len(f.PerRound))
			for i, t := range f.PerRound {
				turns[i] = fmt.Sprintf("%.0f → %.0f (%s)", t.SMTP, t.Invited, pct(t.Ratio))
			}
			fmt.Fprintf(w, "%d sessions, go-smtp → invited in turns: %s\n", f.Sessions, strings.Join(turns, ", "))
		}
	}

	if e := r.EndToEnd; e != nil {
		section(fmt.Sprintf("3. End-to-end: 250 → state applied (open loop, %.0f msg/s offered for %.0f s)", e.OfferedPerSecond, e.Seconds))
		fmt.Fprintln(tw, "sent\taccepted\tapplied\tapplied/s\tp50 ms\tp99 ms\tmax ms\ttimed out\tpolls/s\tdaemon cores\t")
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t%d\t%.0f\t%.2f\t\n", e.Sent, e.Accepted, e.Applied, e.AppliedPerSecond,
			e.Latency.P50, e.Latency.P99, e.Latency.Max, e.TimedOut, e.PollsPerSecond, e.DaemonCores)
		printMaxApplied(w, tw, e.Max)
	}

	if f := r.Fanout; f != nil {
		section("4. Invite fan-out (POST /event/{uid}/invites → relay)")
		fmt.Fprintln(tw, "invites\tPOSTs s\tattendees created s\trelay got all s\tinvites/s\tcreated/s\tdaemon cores\tcommits × updates (page writes), writer busy run+commit\t")
		row := func(label string, f *FanoutFigure) {
			fmt.Fprintf(tw, "%s%d\t%.2f\t%.2f\t%.2f\t%.0f\t%.0f\t%.2f\t%s\t\n", label, f.Invites, f.PostSeconds, f.CreatedSeconds, f.SentSeconds,
				f.InvitesPerSecond, f.CreatedPerSecond, f.DaemonCores, f.Commits)
		}
		row("", f)
		if f.Seed != nil {
			row("(big event seed) ", f.Seed)
		}
		printMaxApplied(w, tw, f.Replies)
	}

	if len(r.Reads) > 0 {
		section("5. HTTP read latency (sequential GETs, one keep-alive connection, the paths in turns)")
		fmt.Fprintln(tw, "what\trequests\tp50 ms\tp99 ms\tmax ms\tbytes\t")
		for _, f := range r.Reads {
			fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.2f\t%d\t\n", f.What, f.Requests, f.Latency.P50, f.Latency.P99, f.Latency.Max, f.Bytes)
		}
	}

	if m := r.Resources; m != nil {
		section("6. Memory and disk (main daemon)")
		fmt.Fprintln(tw, "peak RSS (VmHWM)\tmax sampled RSS\tof it anon (heap)\tfile (db mmap)\taccept daemons' peak\tdb file\tdb allocated\t")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", mib(m.PeakRSS), mib(m.MaxSampledRSS), mib(m.MaxAnon), mib(m.MaxFile),
			mib(m.AcceptPeakRSS), mib(m.DBSize), mib(m.DBAllocated))
		tw.Flush()
		if m.PeakDuring != "" {
			fmt.Fprintf(w, "   the peak was reached during: %s\n", m.PeakDuring)
		}
		fmt.Fprintln(tw, "\tadded\tbytes each (allocated)\tbytes each (file size)\t")
		fmt.Fprintf(tw, "events (with their %s message)\t%d\t%d\t%d\t\n", size, m.EventsAdded, m.BytesPerEvent, m.PerEventSize)
		fmt.Fprintf(tw, "attendees (with their send record)\t%d\t%d\t%d\t\n", m.Attendees, m.BytesPerAtt, m.PerAttSize)
		if len(m.Buckets) > 0 {
			tw.Flush()
			fmt.Fprintf(w, "   pages in use per bucket after the run (%s of %s allocated):\n", mib(m.BucketsInUse), mib(m.DBAllocated))
			fmt.Fprintln(tw, "bucket\tkeys\tin use\tbytes/key\t")
			for _, b := range m.Buckets {
				if b.InUse == 0 {
					continue // empty, or only a few small keys
				}
				per := int64(0)
				if b.Keys > 0 {
					per = b.InUse / int64(b.Keys)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t\n", b.Name, b.Keys, mib(b.InUse), per)
			}
		}
	}
	if len(r.Large) > 0 {
		f := r.Large[0]
		section(fmt.Sprintf("7. Large messages (%d sessions at once, REQUESTs of %s, a fresh daemon each, --max-message-memory as default)", f.Sessions, mib(int64(f.MessageBytes))))
		fmt.Fprintln(tw, "clients\taccepted\tMiB/s\t4xx\terrors\tp50 s\tp99 s\tdaemon peak RSS\t")
		for _, f := range r.Large {
			clients := "say SIZE="
			if !f.DeclaredSize {
				clients = "do not say SIZE="
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%d\t%.2f\t%.2f\t%s\t\n", clients, f.Accepted, f.MiBPerSecond, f.Deferred, f.Errors,
				f.Latency.P50/1000, f.Latency.P99/1000, mib(f.PeakRSS))
		}
	}
	tw.Flush()
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w, "\nWarnings:")
		for _, s := range r.Warnings {
			fmt.Fprintln(w, "  - "+s)
		}
	}
	if r.Error != "" {
		fmt.Fprintln(w, "\nStopped early: "+r.Error)
	}
	fmt.Fprintf(w, "\n%.0f s in all.\n", r.Seconds)
}

func pct(f float64) string {
	if f == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*f)
}

func mib(b int64) string {
	switch {
	case b == 0:
		return "-"
	case b < 1<<20:
		return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(b)/(1<<20)), ".0") + " MiB"
}

// printMaxApplied prints m, if any, under the table tw writes to w.
func printMaxApplied(w io.Writer, tw *tabwriter.Writer, m *MaxAppliedFigure) {
	if m == nil {
		return
	}
	tw.Flush()
	fmt.Fprintf(w, "   max applied, %s (closed loop, %d sessions, ≤%d in flight, %.0f s):\n", m.What, m.Sessions, m.Window, m.Seconds)
	fmt.Fprintln(tw, "applied/s\t÷ durable accept\taccept compared\tdaemon cores\tCPU µs/msg\tcommits × updates (page writes), writer busy run+commit\tupdates/msg\tpage writes/msg\t")
	fmt.Fprintf(tw, "%.0f\t%s\t%.0f/s\t%.2f\t%.0f\t%s\t%.1f\t%.1f\t\n", m.AppliedPerSecond, pct(m.RatioToAccept), m.AcceptPerSecond, m.DaemonCores, m.CPUPerMsgUS,
		m.Commits, m.Commits.UpdatesPerMessage, m.Commits.WritesPerMessage)
	tw.Flush()
	if len(m.AcceptAround) > 0 {
		var turns []string
		for _, r := range m.AcceptAround {
			turns = append(turns, fmt.Sprintf("%.0f/s", r))
		}
		fmt.Fprintf(w, "   accept compared: a fresh daemon's, at %d sessions, in turns before and after it: %s", m.Sessions, strings.Join(turns, ", "))
		if m.AcceptStep2 > 0 {
			fmt.Fprintf(w, " (step 2's best: %.0f/s, %s)", m.AcceptStep2, pct(m.AppliedPerSecond/m.AcceptStep2))
		}
		fmt.Fprintln(w)
	}
}
