package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/invited/invited/httpapi"
	"github.com/invited/invited/senderauth"
)

// Config is everything `invited serve` can be told, from (in rising
// precedence) the defaults, the TOML file named by --config, INVITED_*
// environment variables and flags.
type Config struct {
	Data       string `toml:"data"`
	Domain     string `toml:"domain"`
	Hostname   string `toml:"hostname"`
	SMTP       string `toml:"smtp"`
	HTTP       string `toml:"http"`
	Relay      string `toml:"relay"`
	RelayConns int    `toml:"relay_conns"`
	AdminKey   string `toml:"admin_key"`
	AuthPolicy string `toml:"auth_policy"`
	// TrustedAuthServID makes the daemon trust the Authentication-Results
	// header of this upstream MTA instead of checking senders itself.
	TrustedAuthServID string `toml:"trusted_authserv_id"`
	DNS               string `toml:"dns"`
	// DNSCache is how long DNS answers are kept (0: not at all).
	DNSCache Duration `toml:"dns_cache"`
	LogLevel string   `toml:"log_level"`
	TLSCert  string   `toml:"tls_cert"`
	// DKIMKey signs outbound mail when set, as DKIMSelector._domainkey.Domain.
	DKIMKey      string `toml:"dkim_key"`
	DKIMSelector string `toml:"dkim_selector"`
	TLSKey       string `toml:"tls_key"`
	Templates    string `toml:"templates"`

	LandingHosts  []string `toml:"landing_hosts"`
	PublicURL     string   `toml:"public_url"`
	UpgradeURL    string   `toml:"upgrade_url"`
	ShopifySecret string   `toml:"shopify_secret"`

	EventLimit  int `toml:"event_limit"`
	InviteLimit int `toml:"invite_limit"`
	MaxBulkRows int `toml:"max_bulk_rows"`

	MaxMessageBytes    int64    `toml:"max_message_bytes"`
	MaxHeaderBytes     int      `toml:"max_header_bytes"`
	MaxMIMEDepth       int      `toml:"max_mime_depth"`
	MaxMIMEParts       int      `toml:"max_mime_parts"`
	MaxPartBytes       int64    `toml:"max_part_bytes"`
	DataTimeout        Duration `toml:"data_timeout"`
	MaxConns           int      `toml:"max_conns"`
	MaxConnsPerIP      int      `toml:"max_conns_per_ip"`
	MaxMessageMemory   int64    `toml:"max_message_memory"`
	MaxMessagesPerConn int      `toml:"max_messages_per_conn"`

	SendRatePerDomain  float64      `toml:"send_rate_per_domain"`
	InviteRateIP       httpapi.Rate `toml:"invite_rate_ip"`
	InviteRateAttendee httpapi.Rate `toml:"invite_rate_attendee"`
	InviteRateEvent    httpapi.Rate `toml:"invite_rate_event"`
	TrustForwarded     bool         `toml:"trust_forwarded"`

	MaxRecipients   int      `toml:"max_recipients"`
	MaxInbound      int64    `toml:"max_inbound"`
	BurstRate       float64  `toml:"burst_rate"`
	BurstBuffer     int64    `toml:"burst_buffer"`
	MaxAttempts     int      `toml:"max_attempts"`
	SendWorkers     int      `toml:"send_workers"`
	SendYield       Duration `toml:"send_yield"`
	SMTPTimeout     Duration `toml:"smtp_timeout"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`

	// resolver, when set (by tests), replaces DNS.
	resolver senderauth.Resolver
}

// DefaultConfig is what `make run` uses: everything on loopback, mail
// written to files.
func DefaultConfig() Config {
	return Config{
		Data:               "./data",
		Domain:             "localhost",
		SMTP:               "127.0.0.1:2525",
		HTTP:               "127.0.0.1:8080",
		RelayConns:         4,
		AuthPolicy:         "aligned",
		DKIMSelector:       "invited",
		LogLevel:           "info",
		MaxMessageBytes:    10 << 20,
		MaxHeaderBytes:     64 << 10,
		MaxMIMEDepth:       10,
		MaxMIMEParts:       200,
		MaxPartBytes:       5 << 20,
		DataTimeout:        Duration(10 * time.Minute),
		DNSCache:           Duration(time.Minute),
		MaxConns:           200,
		MaxConnsPerIP:      20,
		MaxMessageMemory:   64 << 20,
		MaxMessagesPerConn: 100,
		SendRatePerDomain:  50,
		InviteRateIP:       httpapi.DefaultRateLimits.PerIP,
		InviteRateAttendee: httpapi.DefaultRateLimits.PerAttendee,
		InviteRateEvent:    httpapi.DefaultRateLimits.PerEvent,
		MaxRecipients:      10,
		MaxInbound:         10000,
		BurstRate:          200,
		MaxAttempts:        10,
		SendWorkers:        32,
		SendYield:          Duration(time.Minute),
		EventLimit:         100,
		InviteLimit:        50000,
		MaxBulkRows:        50000,
		SMTPTimeout:        Duration(2 * time.Minute),
		ShutdownTimeout:    Duration(30 * time.Second),
	}
}

// Validate checks the configuration as a whole.
func (c *Config) Validate() error {
	var errs []error
	if c.Data == "" {
		errs = append(errs, errors.New("data: empty"))
	}
	if c.Domain == "" || strings.ContainsAny(c.Domain, " @/") {
		errs = append(errs, fmt.Errorf("domain: %q is not a domain name", c.Domain))
	}
	switch c.AuthPolicy {
	case "none", "aligned", "dmarc":
	default:
		errs = append(errs, fmt.Errorf("auth-policy: %q is not none, aligned or dmarc", c.AuthPolicy))
	}
	if c.DNS != "" {
		if _, _, err := net.SplitHostPort(c.DNS); err != nil {
			errs = append(errs, fmt.Errorf("dns: %q is not host:port", c.DNS))
		}
	}
	if c.Relay != "" {
		u, err := url.Parse(c.Relay)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			errs = append(errs, fmt.Errorf("relay: %q is not smtp://[user:pass@]host:port or smtps://…", redact(c.Relay)))
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("public-url: %q is not an http(s) URL", c.PublicURL))
		}
	}
	if c.EventLimit == 0 || c.InviteLimit == 0 || c.MaxBulkRows < 1 {
		errs = append(errs, errors.New("event-limit and invite-limit must be positive (or negative for none), max-bulk-rows positive"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls-cert and tls-key go together"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level: %q is not debug, info, warn or error", c.LogLevel))
	}
	if c.BurstBuffer < 0 || c.BurstBuffer > c.MaxInbound {
		errs = append(errs, errors.New("burst-buffer must be between 0 (half of max-inbound) and max-inbound"))
	}
	if c.DNSCache < 0 {
		errs = append(errs, errors.New("dns-cache must not be negative"))
	}
	if c.SendYield < 0 {
		errs = append(errs, errors.New("send-yield must not be negative (0: never put mail off)"))
	}
	if c.MaxMIMEDepth < 1 || c.MaxMIMEParts < 1 || c.MaxPartBytes < 1024 || c.DataTimeout <= 0 {
		errs = append(errs, errors.New("max-mime-depth, max-mime-parts, max-part-bytes (at least 1024) and data-timeout must be positive"))
	}
	if c.MaxHeaderBytes < 1024 || c.MaxConns < 1 || c.MaxConnsPerIP < 1 || c.MaxMessagesPerConn < 1 {
		errs = append(errs, errors.New("max-header-bytes (at least 1024), max-conns, max-conns-per-ip and max-messages-per-conn must be positive"))
	}
	if c.MaxMessageBytes < 1024 || c.MaxRecipients < 1 || c.MaxInbound < 1 || c.MaxAttempts < 1 || c.SendWorkers < 1 || c.RelayConns < 1 {
		errs = append(errs, errors.New("limits must be positive (max-message-bytes at least 1024)"))
	}
	if c.MaxMessageMemory < 0 || c.MaxMessageMemory > 0 && c.MaxMessageMemory < 1<<20 {
		errs = append(errs, errors.New("max-message-memory: 0 (no limit) or at least 1 MiB"))
	}
	return errors.Join(errs...)
}

// redact hides a password in a relay URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Duration is a time.Duration written as "30s" in TOML.
type Duration time.Duration

// String and Set make a Duration a flag.Value, whose default the help shows.
func (d *Duration) String() string { return time.Duration(*d).String() }

// Set implements flag.Value.
func (d *Duration) Set(s string) error { return d.UnmarshalText([]byte(s)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// serveFlags binds the flags of `invited serve` to c. Each has an
// INVITED_* environment variable, named in its usage.
func serveFlags(fs *flag.FlagSet, c *Config) {
	fs.String("config", "", "TOML configuration `file` [INVITED_CONFIG]") // read first, by configFlag
	fs.StringVar(&c.Data, "data", c.Data, "data `dir`ectory: database, admin key, outbox [INVITED_DATA]")
	fs.StringVar(&c.Domain, "domain", c.Domain, "served mail `domain`: create@, rsvp@, bulk@ it [INVITED_DOMAIN]")
	fs.StringVar(&c.Hostname, "hostname", c.Hostname, "host `name` in the SMTP greeting (default: the domain) [INVITED_HOSTNAME]")
	fs.StringVar(&c.SMTP, "smtp", c.SMTP, "SMTP listen `addr`ess [INVITED_SMTP]")
	fs.StringVar(&c.HTTP, "http", c.HTTP, "HTTP listen `addr`ess [INVITED_HTTP]")
	fs.StringVar(&c.Relay, "relay", c.Relay, "outbound relay `URL`: smtp://[user:pass@]host:port (STARTTLS when offered) or smtps://… (TLS); empty writes .eml files to DIR/outbox [INVITED_RELAY]")
	fs.IntVar(&c.RelayConns, "relay-conns", c.RelayConns, "parallel `connections` to the relay [INVITED_RELAY_CONNS]")
	fs.StringVar(&c.AdminKey, "admin-key", c.AdminKey, "admin API `key`; when empty one is generated on first start, kept in DIR/admin.key and printed [INVITED_ADMIN_KEY]")
	fs.StringVar(&c.AuthPolicy, "auth-policy", c.AuthPolicy, "sender `policy`: aligned (an SPF or DKIM pass aligned with the From domain), dmarc (a DMARC pass), or none (the From header is trusted: development only); the From must also be the ORGANIZER of a command, the ATTENDEE of a reply [INVITED_AUTH_POLICY]")
	fs.StringVar(&c.TrustedAuthServID, "trusted-authserv-id", c.TrustedAuthServID, "behind a trusted MTA: read its Authentication-Results header with this `id` instead of checking SPF/DKIM/DMARC [INVITED_TRUSTED_AUTHSERV_ID]")
	fs.StringVar(&c.DNS, "dns", c.DNS, "DNS server `host:port` for SPF, DKIM and DMARC lookups (default: the system's) [INVITED_DNS]")
	fs.Var(&c.DNSCache, "dns-cache", "`time` DNS answers for SPF, DKIM and DMARC are kept; 0: ask every time [INVITED_DNS_CACHE]")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "`level`: debug, info, warn or error [INVITED_LOG_LEVEL]")
	fs.StringVar(&c.DKIMKey, "dkim-key", c.DKIMKey, "PEM private key `file` that DKIM-signs outbound mail (make one with invited dkim generate) [INVITED_DKIM_KEY]")
	fs.StringVar(&c.DKIMSelector, "dkim-selector", c.DKIMSelector, "DKIM `selector`: the key is published at SELECTOR._domainkey.DOMAIN [INVITED_DKIM_SELECTOR]")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate `file` for STARTTLS [INVITED_TLS_CERT]")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM key `file` for STARTTLS [INVITED_TLS_KEY]")
	fs.StringVar(&c.Templates, "templates", c.Templates, "`dir`ectory whose *.tmpl files override the built-in templates [INVITED_TEMPLATES]")
	fs.Int64Var(&c.MaxMessageBytes, "max-message-bytes", c.MaxMessageBytes, "largest message accepted, in `bytes` [INVITED_MAX_MESSAGE_BYTES]")
	fs.IntVar(&c.MaxRecipients, "max-recipients", c.MaxRecipients, "recipients per message [INVITED_MAX_RECIPIENTS]")
	fs.Int64Var(&c.MaxInbound, "max-inbound", c.MaxInbound, "inbound queue depth past which SMTP answers 451 [INVITED_MAX_INBOUND]")
	fs.Float64Var(&c.BurstRate, "burst-rate", c.BurstRate, "`messages` a second from which SMTP arriving faster than parsing counts as a burst: parsing then waits and the queue absorbs it; negative: never [INVITED_BURST_RATE]")
	fs.Int64Var(&c.BurstBuffer, "burst-buffer", c.BurstBuffer, "`messages` queued for parsing past which a burst no longer holds parsing back (default: half of max-inbound) [INVITED_BURST_BUFFER]")
	fs.IntVar(&c.MaxAttempts, "max-attempts", c.MaxAttempts, "attempts before a job becomes a dead letter [INVITED_MAX_ATTEMPTS]")
	fs.IntVar(&c.SendWorkers, "send-workers", c.SendWorkers, "messages sent in parallel (an eighth, at least 4, while the inbound stages are overloaded) [INVITED_SEND_WORKERS]")
	fs.Var(&c.SendYield, "send-yield", "longest `time` outbound mail is put off while the inbound stages are overloaded; 0: never [INVITED_SEND_YIELD]")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", c.MaxHeaderBytes, "largest message header accepted, in `bytes` [INVITED_MAX_HEADER_BYTES]")
	fs.IntVar(&c.MaxMIMEDepth, "max-mime-depth", c.MaxMIMEDepth, "multipart `levels` a message may nest [INVITED_MAX_MIME_DEPTH]")
	fs.IntVar(&c.MaxMIMEParts, "max-mime-parts", c.MaxMIMEParts, "MIME `parts` a message may have [INVITED_MAX_MIME_PARTS]")
	fs.Int64Var(&c.MaxPartBytes, "max-part-bytes", c.MaxPartBytes, "decoded `bytes` of a calendar or CSV part [INVITED_MAX_PART_BYTES]")
	fs.Var(&c.DataTimeout, "data-timeout", "`time` a message's DATA may take [INVITED_DATA_TIMEOUT]")
	fs.IntVar(&c.MaxConns, "max-conns", c.MaxConns, "SMTP `connections` open at once [INVITED_MAX_CONNS]")
	fs.Int64Var(&c.MaxMessageMemory, "max-message-memory", c.MaxMessageMemory, "`bytes` that messages over 64 KiB may hold at once while they are received (three quarters) and read (a quarter); others wait, and SMTP answers 451 after a while; 0: no limit [INVITED_MAX_MESSAGE_MEMORY]")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", c.MaxConnsPerIP, "SMTP `connections` open at once from one address [INVITED_MAX_CONNS_PER_IP]")
	fs.IntVar(&c.MaxMessagesPerConn, "max-messages-per-conn", c.MaxMessagesPerConn, "`messages` on one SMTP connection [INVITED_MAX_MESSAGES_PER_CONN]")
	fs.Float64Var(&c.SendRatePerDomain, "send-rate-per-domain", c.SendRatePerDomain, "`messages` a second to one recipient domain; negative: no limit [INVITED_SEND_RATE_PER_DOMAIN]")
	fs.Var(&c.InviteRateIP, "invite-rate-ip", "public invites per client address, `N/DURATION` [INVITED_INVITE_RATE_IP]")
	fs.Var(&c.InviteRateAttendee, "invite-rate-attendee", "public invites per invited address, `N/DURATION` [INVITED_INVITE_RATE_ATTENDEE]")
	fs.Var(&c.InviteRateEvent, "invite-rate-event", "public invites per event, `N/DURATION` [INVITED_INVITE_RATE_EVENT]")
	fs.BoolVar(&c.TrustForwarded, "trust-forwarded", c.TrustForwarded, "take the client address from X-Forwarded-For (behind a reverse proxy only) [INVITED_TRUST_FORWARDED]")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "`URL` people reach the HTTP API at, for links in notices (default http:// and the HTTP address) [INVITED_PUBLIC_URL]")
	fs.IntVar(&c.EventLimit, "event-limit", c.EventLimit, "`events` an organizer without a subscription may register; negative: no limit [INVITED_EVENT_LIMIT]")
	fs.IntVar(&c.InviteLimit, "invite-limit", c.InviteLimit, "people who may be invited to one event; negative: no limit [INVITED_INVITE_LIMIT]")
	fs.IntVar(&c.MaxBulkRows, "max-bulk-rows", c.MaxBulkRows, "rows a CSV mailed to bulk@ may have [INVITED_MAX_BULK_ROWS]")
	fs.StringVar(&c.ShopifySecret, "shopify-secret", c.ShopifySecret, "`secret` that signs Shopify order webhooks (POST /order); empty disables enrollment [INVITED_SHOPIFY_SECRET]")
	fs.StringVar(&c.UpgradeURL, "upgrade-url", c.UpgradeURL, "`URL` where organizers buy a subscription, named in the event limit notice [INVITED_UPGRADE_URL]")
	fs.Var(&c.SMTPTimeout, "smtp-timeout", "SMTP per-command `timeout` [INVITED_SMTP_TIMEOUT]")
	fs.Var(&c.ShutdownTimeout, "shutdown-timeout", "`time` SIGTERM waits for work in hand [INVITED_SHUTDOWN_TIMEOUT]")
	fs.Func("landing-host", "`host` the public invite endpoint may redirect to (repeatable) [INVITED_LANDING_HOSTS, comma-separated]", func(s string) error {
		for h := range strings.SplitSeq(s, ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.LandingHosts = append(c.LandingHosts, h)
			}
		}
		return nil
	})
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	if flagName == "landing-host" {
		return "INVITED_LANDING_HOSTS"
	}
	return "INVITED_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// configFlag finds the value of --config (or -config) in args.
func configFlag(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasValue {
			return value
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// loadConfig builds the configuration of `invited serve` from args, the
// environment (getenv) and the TOML file they name.
func loadConfig(args []string, getenv func(string) string, fs *flag.FlagSet) (Config, error) {
	path := configFlag(args)
	if path == "" {
		path = getenv("INVITED_CONFIG")
	}

	cfg := DefaultConfig()
	if path != "" {
		md, err := toml.DecodeFile(path, &cfg)
		if err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		if un := md.Undecoded(); len(un) > 0 {
			return cfg, fmt.Errorf("config %s: unknown keys %v", path, un)
		}
	}
	// The environment sets serve's flags only, not the caller's own (keys
	// create's --scope must not come from a stray INVITED_SCOPE).
	own := map[string]bool{"config": true}
	fs.VisitAll(func(f *flag.Flag) { own[f.Name] = true })
	serveFlags(fs, &cfg)
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if own[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = errors.Join(envErr, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}
