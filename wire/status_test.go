package wire_test

import (
	"testing"

	"github.com/flashsale/flashsale/wire"
)

func TestStatusRoundTrip(t *testing.T) {
	t.Parallel()
	known := map[wire.Status]string{
		wire.StatusError:   "ERROR",
		wire.StatusSuccess: "SUCCESS",
		wire.StatusSoldOut: "SOLD_OUT",
	}
	seen := make(map[string]wire.Status)
	for _, s := range wire.Statuses() {
		text := s.String()
		t.Run(text, func(t *testing.T) {
			if want, ok := known[s]; ok && text != want {
				t.Errorf("Status(%d).String() = %q, want %q", s, text, want)
			}
			got, ok := wire.ParseStatus(text)
			if !ok || got != s {
				t.Errorf("ParseStatus(%q) = %v, %v; want %v, true", text, got, ok, s)
			}
		})
		if other, dup := seen[text]; dup {
			t.Errorf("statuses %d and %d are both %q", other, s, text)
		}
		seen[text] = s
	}
	for s := range known {
		if _, ok := seen[known[s]]; !ok {
			t.Errorf("Statuses() lacks %v", known[s])
		}
	}
}

func TestStatusZeroValueIsError(t *testing.T) {
	t.Parallel()
	var s wire.Status
	if s != wire.StatusError || s.String() != "ERROR" {
		t.Errorf("zero Status = %d (%q), want StatusError (\"ERROR\")", s, s.String())
	}
}

func TestStatusOutOfRangePrintsError(t *testing.T) {
	t.Parallel()
	for _, s := range []wire.Status{wire.Status(len(wire.Statuses())), wire.Status(len(wire.Statuses()) + 1), 127, 255} {
		if got := s.String(); got != "ERROR" {
			t.Errorf("Status(%d).String() = %q, want \"ERROR\"", s, got)
		}
	}
}

func TestParseStatusUnknown(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"", "success", "SOLDOUT", "ERROR ", "sold_out"} {
		if got, ok := wire.ParseStatus(text); ok || got != wire.StatusError {
			t.Errorf("ParseStatus(%q) = %v, %v; want ERROR, false", text, got, ok)
		}
	}
}
