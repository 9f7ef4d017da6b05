package itip

import (
	"fmt"
	"strings"
	"testing"
)

func TestReencodeVTimezone_CachedSameAsFresh(t *testing.T) {
	text, ok := VTimezone("Europe/Berlin", 2026)
	if !ok {
		t.Fatal("no VTIMEZONE for Europe/Berlin")
	}
	fresh, ok := reencodeVTimezoneNow(text, "Europe/Berlin")
	if !ok || !strings.Contains(fresh, "TZID:Europe/Berlin") {
		t.Fatalf("fresh: %v %q", ok, fresh)
	}
	for range 3 {
		if got, ok := reencodeVTimezone(text, "Europe/Berlin"); !ok || got != fresh {
			t.Fatalf("cached: %v %q, want %q", ok, got, fresh)
		}
	}
	if _, ok := vtzSent.Get("Europe/Berlin\x00" + text); !ok {
		t.Error("the re-encoded zone was not kept")
	}
	// A mismatched TZID is refused, cached or not.
	for range 2 {
		if _, ok := reencodeVTimezone(text, "Europe/Paris"); ok {
			t.Fatal("accepted a VTIMEZONE under another TZID")
		}
	}
	// A huge text is not kept.
	huge := strings.Replace(text, "BEGIN:VTIMEZONE", "BEGIN:VTIMEZONE\r\nX-PAD:"+strings.Repeat("x", maxVTZCacheText), 1)
	reencodeVTimezone(huge, "Europe/Berlin")
	if _, ok := vtzSent.Get("Europe/Berlin\x00" + huge); ok {
		t.Error("a text over maxVTZCacheText was cached")
	}
}

func TestGeneratedVTimezone_CachedSameAsFresh(t *testing.T) {
	text, ok := VTimezone("America/New_York", 2027)
	if !ok {
		t.Fatal("no VTIMEZONE for America/New_York")
	}
	fresh, ok := reencodeVTimezoneNow(text, "America/New_York")
	if !ok {
		t.Fatal("go-ical refused the generated zone")
	}
	for range 2 {
		if got, ok := generatedVTimezone("America/New_York", 2027); !ok || got != fresh {
			t.Fatalf("generated: %v %q, want %q", ok, got, fresh)
		}
	}
	if _, ok := generatedVTimezone("Nowhere/Atlantis", 2027); ok {
		t.Error("a zone for an unknown TZID")
	}
	if _, ok := vtzGenerated.Get(zoneKey{"America/New_York", 2027}); !ok {
		t.Error("the generated zone was not kept")
	}
}

// Zones organizers send, however many, leave the generated ones kept.
func TestGeneratedVTimezone_SurvivesSentZones(t *testing.T) {
	if _, ok := generatedVTimezone("Asia/Tokyo", 2028); !ok {
		t.Fatal("no zone for Asia/Tokyo")
	}
	text, ok := VTimezone("Europe/Berlin", 2026)
	if !ok {
		t.Fatal("no VTIMEZONE for Europe/Berlin")
	}
	for i := range vtzSent.Max + 1 {
		reencodeVTimezone(text+fmt.Sprintf("X-N:%d\r\n", i), "Europe/Berlin")
	}
	if _, ok := vtzGenerated.Get(zoneKey{"Asia/Tokyo", 2028}); !ok {
		t.Error("organizers' zones pushed out a generated one")
	}
}
