// Package store is invited's only user of bbolt: events, attendees,
// statistics, organizers, inbound messages, outbound send records and the
// durable queues between pipeline stages all live in one bbolt file.
//
// # Layout
//
// Every record is JSON in its own bucket (see buckets in store.go). Keys that
// are listed in order are built so that a cursor walks them without a scan:
//
//   - attendees: uid 0x00 email, so an event's attendees are one prefix;
//   - organizer index: email 0x00 created(8 bytes) uid, walked backwards for
//     newest first; system index: created(8 bytes) uid;
//   - queues (one bucket per stage): due(8 bytes) id(8 bytes), so the first
//     keys are the jobs that are due first.
//
// Statistics are counters kept in the same transaction as the change they
// count, so reading them never counts attendees.
//
// # Group commit
//
// Writers call [DB.Update]. A single committer goroutine runs whatever
// functions have queued when the previous commit ends in one bbolt
// transaction, so concurrent SMTP sessions and stage workers share one fsync.
// A function that fails is left out and the rest are run again, as
// bbolt's own Batch does, so one bad item never fails its neighbours.
// Update returns only after the transaction holding its function is on disk.
//
// # Raw messages
//
// Raw inbound messages are stored in the database, not as files: the SMTP
// size limit bounds them (10 MiB by default), and keeping them in the same
// transaction as their queue entry means one fsync makes a message durable
// and queued at once, where a file would need its own fsync and a second
// commit to be found again after a crash.
package store
