// Package mailer hands rendered messages over for delivery: Relay sends
// them to an SMTP relay over a small pool of reused connections, Outbox
// writes them to a directory when no relay is configured.
//
// Both have the method Send(ctx, from, to, msg) error and never re-encode
// msg. Errors from Relay.Send are temporary unless IsPermanent says
// otherwise: the caller retries temporary failures later and gives up on
// permanent ones.
package mailer
