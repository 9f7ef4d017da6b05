package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/invited/invited/mailer"
)

const dkimUsage = `Usage:
  invited dkim generate [--data DIR] [--domain NAME] [--dkim-selector S] [--dkim-key FILE]

Makes a DKIM key for signing outbound mail: writes it to FILE (default
DIR/dkim.pem, not overwritten) and prints the DNS TXT record to publish at
S._domainkey.NAME (S defaults to invited). It reads the same flags,
variables and configuration file as serve, so the daemon then signs with
that key once it is given --dkim-key FILE.
`

func dkimCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		fmt.Fprint(stdout, dkimUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errors.New("dkim: say generate")
	}
	fs := flag.NewFlagSet("invited dkim generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := loadConfig(args[1:], getenv, fs)
	if err != nil {
		return err
	}
	out, selector := cfg.DKIMKey, cfg.DKIMSelector
	if out == "" {
		out = filepath.Join(cfg.Data, "dkim.pem")
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("dkim: %s exists; not overwriting a key in use", out)
	}
	key, txt, err := mailer.GenerateDKIMKey()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
		return err
	}
	if err := os.WriteFile(out, key, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n\nPublish this DNS record:\n\n%s._domainkey.%s. IN TXT %s\n\nthen run: invited serve --dkim-key %s --dkim-selector %s\n",
		out, selector, cfg.Domain, quoteTXT(txt), out, selector)
	return nil
}

// quoteTXT splits a TXT value into quoted strings of at most 255 bytes,
// as zone files need for long records.
func quoteTXT(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	return strings.Join(append(parts, `"`+s+`"`), " ")
}
