package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options are the flags; they are written to the JSON file as run.
type Options struct {
	Quick        bool     `json:"quick"`
	Out          string   `json:"out"`
	Dir          string   `json:"dir"`
	Bin          string   `json:"bin,omitempty"`
	Testdata     string   `json:"testdata"`
	Only         string   `json:"only,omitempty"`
	Measure      duration `json:"measure"`
	Rounds       int      `json:"rounds"`
	Sessions     intList  `json:"sessions"`
	Producers    intList  `json:"producers"`
	MessageBytes int      `json:"message_bytes"`
	Rate         float64  `json:"rate"`
	E2E          duration `json:"e2e_duration"`
	E2ESessions  int      `json:"e2e_sessions"`
	MaxSessions  int      `json:"max_sessions"`
	PollEvery    duration `json:"poll_every"`
	Pollers      int      `json:"pollers"`
	PollBatch    int      `json:"poll_batch"`
	Window       int      `json:"window"`
	Invites      int      `json:"invites"`
	Small        int      `json:"small_event"`
	Big          int      `json:"big_event"`
	Reads        int      `json:"reads"`
	Large        int      `json:"large_sessions"`
	LargeBytes   int      `json:"large_message_bytes"`
	LogLevel     string   `json:"log_level"`
	Auth         string   `json:"auth_policy"`
	DaemonFlags  strList  `json:"daemon_flags,omitempty"`
	Lockstep     bool     `json:"lockstep"`
}

// quickDefaults replace the defaults of the flags not given with -quick.
var quickDefaults = map[string]string{
	"measure": "1s",
	"rounds":  "1",
	"e2e":     "3s",
	"invites": "2000",
	"big":     "10000",
	"reads":   "300",
	"large":   "10",
}

func parseFlags(args []string, stderr io.Writer) (Options, error) {
	o := Options{
		Out:          "bench.json",
		Dir:          os.TempDir(),
		Measure:      duration(3 * time.Second),
		Rounds:       3,
		Sessions:     intList{1, 8, 32},
		Producers:    intList{1, 64},
		MessageBytes: 4096,
		Large:        40,
		LargeBytes:   8 << 20,
		Rate:         200,
		E2E:          duration(10 * time.Second),
		E2ESessions:  8,
		PollEvery:    duration(2 * time.Millisecond),
		Pollers:      4,
		PollBatch:    8,
		Window:       256,
		Invites:      20000,
		Small:        100,
		Big:          100000,
		Reads:        2000,
		LogLevel:     "warn",
		Auth:         "aligned",
	}
	fs := flag.NewFlagSet("invited-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: go run ./cmd/invited-bench [flags]

Measures the invited daemon against the ceilings of this machine (a go-smtp
server that discards, bbolt with group commit), prints a table to stdout
and writes every figure to the -out JSON file. Run it from the repository.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.BoolVar(&o.Quick, "quick", false, "a smoke run of about a minute: 1 s measurements in one round, 3 s end-to-end, 2000 invites, a big event of 10000")
	fs.StringVar(&o.Out, "out", o.Out, "JSON file to write the figures to (empty: none)")
	fs.StringVar(&o.Dir, "dir", o.Dir, "where to put the temporary databases: use a real disk, not tmpfs")
	fs.StringVar(&o.Bin, "bin", "", "invited binary to run (default: go build ./cmd/invited)")
	fs.StringVar(&o.Testdata, "testdata", "", "directory of the iMIP samples (default: testdata/imip of the module)")
	fs.StringVar(&o.Only, "only", "", "comma-separated steps to run: ceilings, accept, e2e, fanout, reads, large (default: all)")
	fs.Var(&o.Measure, "measure", "length of each ceiling and accept-rate measurement")
	fs.IntVar(&o.Rounds, "rounds", o.Rounds, "rounds at the most -sessions, go-smtp and the daemon's accept taking turns, each -measure long: the ratio is of their totals, so the machine's drift falls on both")
	fs.Var(&o.Sessions, "sessions", "SMTP session counts for the go-smtp ceiling and the accept rate")
	fs.Var(&o.Producers, "producers", "producer counts for the bbolt group-commit ceiling")
	fs.IntVar(&o.MessageBytes, "size", o.MessageBytes, "approximate size of each REQUEST message and bbolt value, in bytes")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "end-to-end offered load, messages per second")
	fs.Var(&o.E2E, "e2e", "length of the end-to-end run and of the max applied run")
	fs.IntVar(&o.E2ESessions, "e2e-sessions", o.E2ESessions, "SMTP sessions of the end-to-end run")
	fs.IntVar(&o.MaxSessions, "max-sessions", o.MaxSessions, "SMTP sessions of the max applied run (default: the most of -sessions, as the accept rate it is compared with)")
	fs.Var(&o.PollEvery, "poll", "how often the oldest pending messages are polled in the end-to-end run")
	fs.IntVar(&o.Pollers, "pollers", o.Pollers, "concurrent polls in the end-to-end run")
	fs.IntVar(&o.PollBatch, "poll-batch", o.PollBatch, "pending messages polled per round, oldest first, in the end-to-end run")
	fs.IntVar(&o.Window, "window", o.Window, "most messages accepted but not applied in the max applied run")
	fs.IntVar(&o.Invites, "invites", o.Invites, "attendees of the fan-out")
	fs.IntVar(&o.Small, "small", o.Small, "attendees of the small event of the HTTP reads")
	fs.IntVar(&o.Big, "big", o.Big, "attendees of the big event of the HTTP reads")
	fs.IntVar(&o.Reads, "reads", o.Reads, "requests per HTTP read latency figure")
	fs.IntVar(&o.Large, "large", o.Large, "SMTP sessions sending large messages, for the daemon's memory")
	fs.IntVar(&o.LargeBytes, "large-size", o.LargeBytes, "approximate size of each large message, in bytes")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "the daemon's --log-level")
	fs.StringVar(&o.Auth, "auth", o.Auth, "the daemon's --auth-policy: aligned (SPF checked against a DNS server the bench runs on 127.0.0.1) or none")
	fs.BoolVar(&o.Lockstep, "lockstep", false, "SMTP clients wait for each reply (as smtp-source does) instead of pipelining MAIL, RCPT and DATA (as Gmail, Exchange and Postfix do)")
	fs.Var(&o.DaemonFlags, "daemon-flag", "extra flag for invited serve, e.g. -daemon-flag=--send-workers=16 (repeatable)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.Quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range quickDefaults {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return o, err
				}
			}
		}
	}
	switch {
	case len(o.Sessions) == 0 || slices.Min(o.Sessions) < 1:
		return o, errors.New("-sessions: give positive counts")
	case len(o.Producers) == 0 || slices.Min(o.Producers) < 1:
		return o, errors.New("-producers: give positive counts")
	case o.Rate <= 0 || o.E2E <= 0 || o.Measure <= 0 || o.PollEvery <= 0:
		return o, errors.New("-rate, -e2e, -measure and -poll must be positive")
	case o.Rounds < 1:
		return o, errors.New("-rounds must be positive")
	case o.E2ESessions < 1 || o.Pollers < 1 || o.PollBatch < 1 || o.Window < 1 || o.Reads < 1:
		return o, errors.New("-e2e-sessions, -pollers, -poll-batch, -window and -reads must be positive")
	case o.Invites < 1 || o.Small < 1 || o.Big < 1 || o.Large < 1 || o.LargeBytes < 1:
		return o, errors.New("-invites, -small, -big, -large and -large-size must be positive")
	case o.Auth != "aligned" && o.Auth != "none":
		return o, fmt.Errorf("-auth: %q is neither aligned nor none", o.Auth)
	}
	for _, s := range strings.Split(o.Only, ",") {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(steps, s) {
			return o, fmt.Errorf("-only: unknown step %q (steps: %s)", s, strings.Join(steps, ", "))
		}
	}
	return o, nil
}

var steps = []string{"ceilings", "accept", "e2e", "fanout", "reads", "large"}

func (o Options) runs(step string) bool {
	if o.Only == "" {
		return true
	}
	for _, s := range strings.Split(o.Only, ",") {
		if strings.TrimSpace(s) == step {
			return true
		}
	}
	return false
}

// duration is a time.Duration flag that is written to JSON as text.
type duration time.Duration

func (d *duration) String() string { return time.Duration(*d).String() }
func (d *duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	*d = duration(v)
	return err
}
func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// intList is a comma-separated list of integers.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(s string) error {
	var out intList
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// strList is a repeatable string flag.
type strList []string

func (l *strList) String() string     { return strings.Join(*l, " ") }
func (l *strList) Set(s string) error { *l = append(*l, s); return nil }
