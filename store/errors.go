package store

import "errors"

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrExists is returned when a record that must be new already exists.
var ErrExists = errors.New("store: already exists")

// ErrClosed is returned by Update after Close.
var ErrClosed = errors.New("store: closed")

// ErrReadOnly is returned when a write is attempted in a View transaction.
var ErrReadOnly = errors.New("store: read-only transaction")

// ErrSchema is returned by Open for a file written by a newer schema.
var ErrSchema = errors.New("store: unsupported schema version")

// ErrBadCursor is returned for a pagination cursor this store did not issue.
var ErrBadCursor = errors.New("store: bad cursor")

// ErrLocked is returned by Open when another process (a running daemon)
// has the file open.
var ErrLocked = errors.New("store: database in use by another process")
