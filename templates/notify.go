package templates

// The data types below are those of the notifications mailed to organizers.
// Each is rendered by the templates of the name given in its comment, with
// Set.Render for the bodies and Set.Subject for the Subject header. Strings
// are inserted as they are: the HTML templates escape them, the text
// templates do not, and fields meant to be on one line go through oneline.
// The zero value of each type renders without error.

// EventCreated is the data of event_created: the organizer's event is
// registered, and here is how to invite people to it.
type EventCreated struct {
	Organizer   string // organizer's name, may be empty
	Mailto      string // organizer's address
	Summary     string // the event's summary (title)
	UID         string // our event id
	OriginalUID string // the UID in the organizer's calendar
	When        string // start and end, formatted for people
	// InviteURL is the public invite link without its query, such as
	// https://invited.example.com/event/UID/invite; the templates show it
	// with ?email=&name= appended.
	InviteURL string
	// ButtonSnippet is HTML for an RSVP button the organizer can paste into
	// a page or newsletter. It is shown as code: escaped in the HTML body,
	// as it is in the text body.
	ButtonSnippet string
	BulkAddress   string // where to mail a CSV of attendees, such as bulk@invited.example.com
	// CSVExample is a sample CSV, header line included, such as
	// "uid,email,name\nUID,jane@example.com,Jane Doe".
	CSVExample string
}

// EventFailed is the data of event_failed: an event the organizer sent could
// not be registered. Send it only to an authenticated sender.
type EventFailed struct {
	Organizer string // organizer's name, may be empty
	Mailto    string // organizer's address
	Summary   string // the event's summary, empty when it could not be read
	Subject   string // Subject of the organizer's message
	Reason    string // why, in plain words: "the message has no calendar invitation"
	// CreateAddress is the address to invite as a guest, such as
	// create@invited.example.com; when empty the templates say "our create@
	// address".
	CreateAddress string
}

// EventLimit is the data of event_limit: the organizer has reached their
// event limit, so the event was not registered.
type EventLimit struct {
	Organizer string // organizer's name, may be empty
	Mailto    string // organizer's address
	Summary   string // the event that was not registered
	Limit     int    // events allowed
	Count     int    // events the organizer has
	// UpgradeURL is where to buy a subscription with no event limit; when
	// empty the templates tell the organizer to contact the administrator.
	UpgradeURL string
}

// Enrollment is the data of enrollment: the organizer's subscription is
// active and their events have no limit any more.
type Enrollment struct {
	Organizer   string // organizer's name, may be empty
	Mailto      string // the address the subscription is for
	Product     string // product bought, such as "invited Pro"
	OrderNumber string // the shop's order number
}

// AttendeeReport is the data of attendee_report: the event's attendees, as a
// CSV file (email,name,status,origin,prodid) that the caller attaches.
type AttendeeReport struct {
	Organizer string // organizer's name, may be empty
	Mailto    string // organizer's address
	Summary   string // the event's summary
	UID       string // our event id
	Attendees int    // rows in the CSV
	Counts    AttendeeCounts
}

// AttendeeCounts are an event's attendees by reply.
type AttendeeCounts struct {
	Accepted  int
	Declined  int
	Tentative int
	Pending   int // not answered yet (needs-action)
}

// BulkReport is the data of bulk_report: what became of a CSV of attendees
// the organizer mailed to the bulk address.
type BulkReport struct {
	Organizer string // organizer's name, may be empty
	Mailto    string // organizer's address
	Filename  string // the CSV attachment's file name
	UID       string // the event id the rows invite to, empty when unknown
	Summary   string // that event's summary, empty when unknown
	Total     int    // data rows read (header excluded)
	Queued    int    // invites queued
	Rejected  int    // rows refused; Rows lists them
	Rows      []BulkRow
	// Truncated counts the rejected rows not in Rows because the report
	// lists only so many.
	Truncated int
}

// BulkRow is one rejected row of a bulk CSV.
type BulkRow struct {
	Line   int    // line number in the file, the header being line 1
	Email  string // as written in the file
	Name   string // as written in the file
	Reason string // why it was refused, in plain words
}
