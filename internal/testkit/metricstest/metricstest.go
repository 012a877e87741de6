package metricstest

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one scrape of a /metrics handler: its text and its parse.
type Scrape struct {
	Text     []byte
	Families map[string]*dto.MetricFamily
}

// Get scrapes h as Prometheus would (GET, text format) and parses it.
func Get(t testing.TB, h http.Handler) Scrape {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	text := rec.Body.Bytes()
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parse the scrape: %v\n%s", err, text)
	}
	return Scrape{Text: text, Families: families}
}

// Series names one series of a scrape by its family and exact labels
// (name, value pairs), with the value a test expects of it.
type Series struct {
	Name   string
	Labels []string
	Want   float64
}

// Expect checks each series' value (see Value).
func (s Scrape) Expect(t testing.TB, series []Series) {
	t.Helper()
	for _, ss := range series {
		if got := s.Value(t, ss.Name, ss.Labels...); got != ss.Want {
			t.Errorf("%s%v = %v, want %v", ss.Name, ss.Labels, got, ss.Want)
		}
	}
}

// Value returns the value of the series of family name whose labels are
// exactly labels (name, value pairs): a counter's or gauge's value, or a
// histogram's sample count. It fails the test when there is no such
// series.
func (s Scrape) Value(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	m := s.find(t, name, labels)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s%v: no counter, gauge or histogram value", name, labels)
	return 0
}

// Sum returns the sum of the observations of a histogram series.
func (s Scrape) Sum(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	m := s.find(t, name, labels)
	if m.Histogram == nil {
		t.Fatalf("%s%v is no histogram", name, labels)
	}
	return m.Histogram.GetSampleSum()
}

// find returns the series of family name with exactly labels.
func (s Scrape) find(t testing.TB, name string, labels []string) *dto.Metric {
	t.Helper()
	f, ok := s.Families[name]
	if !ok {
		t.Fatalf("no family %s in the scrape; families: %v", name, slices.Sorted(maps.Keys(s.Families)))
	}
	want := make(map[string]string, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range f.GetMetric() {
		got := make(map[string]string, len(m.GetLabel()))
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if maps.Equal(got, want) {
			return m
		}
	}
	t.Fatalf("no series %s%v in the scrape", name, labels)
	return nil
}

// Lint runs `promtool check metrics` on the scrape and fails the test on
// any problem it reports. Without promtool it skips, unless the test runs
// in CI (CI or FLASHSALE_TEST_BROWSER set), where promtool is installed
// (Debian package prometheus) and its absence is a failure.
func (s Scrape) Lint(t testing.TB) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("FLASHSALE_TEST_BROWSER") != "" {
			t.Fatalf("promtool is required in CI (apt-get install prometheus): %v", err)
		}
		t.Skipf("promtool not installed (apt-get install prometheus): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(s.Text)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	case err != nil:
		t.Fatalf("run promtool: %v", err)
	case len(bytes.TrimSpace(out)) > 0:
		t.Errorf("promtool check metrics reported:\n%s", out)
	}
}
