package commands

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"os"

	"github.com/flashsale/flashsale/wire"
)

//go:embed bench_report.html
var reportHTML string

var reportTemplate = template.Must(template.New("report").Parse(reportHTML))

// htmlData is what the page's script reads: the summary and the sampled
// answers as three parallel arrays (time in ms, latency in µs, status).
type htmlData struct {
	Title       string           `json:"title"`
	Verdict     string           `json:"verdict"`
	Pass        bool             `json:"pass"`
	Interrupted bool             `json:"interrupted"`
	Text        string           `json:"text"`
	DurationMS  float64          `json:"duration_ms"`
	Statuses    map[string]int64 `json:"statuses"`
	Errors      int64            `json:"errors"`
	ErrorSet    map[string]int64 `json:"error_set"`
	LatencyMS   []htmlRow        `json:"latency_ms"`
	Check       []htmlRow        `json:"check"`
	Answered    int64            `json:"answered"`
	Names       []string         `json:"names"`
	T           []float64        `json:"t"`
	L           []int64          `json:"l"`
	S           []int            `json:"s"`
}

// htmlRow is one line of a table on the page.
type htmlRow struct {
	K string `json:"k"`
	V any    `json:"v"`
}

// WriteHTML writes the report as one self-contained HTML page: no
// network access, the data and the drawing code inline.
func (r *Report) WriteHTML(w *bytes.Buffer) error {
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		return err
	}
	ms := func(d interface{ Microseconds() int64 }) float64 { return float64(d.Microseconds()) / 1e3 }
	l := r.Latency
	d := htmlData{
		Title:       fmt.Sprintf("%s, product %s, %d connections, -P %d", r.Target, r.Product, r.Connections, r.Pipeline),
		Verdict:     r.verdict(),
		Pass:        r.Err() == nil,
		Interrupted: r.Interrupted,
		Text:        text.String(),
		DurationMS:  float64(r.Duration.Microseconds()) / 1e3,
		Statuses:    map[string]int64{},
		Errors:      r.Errors,
		ErrorSet:    r.ErrorSet,
		LatencyMS: []htmlRow{
			{"min", ms(l.Min)}, {"mean", ms(l.Mean)}, {"p50", ms(l.P50)}, {"p90", ms(l.P90)}, {"p95", ms(l.P95)},
			{"p99", ms(l.P99)}, {"p99.9", ms(l.P999)}, {"max", ms(l.Max)},
		},
		Answered: l.Count,
	}
	for _, s := range wire.Statuses() {
		d.Names = append(d.Names, s.String())
		if n := r.Count(s); n > 0 {
			d.Statuses[s.String()] = n
		}
	}
	if ch := r.Check; ch != nil {
		d.Check = []htmlRow{
			{"pass", ch.Pass}, {"successes seen", ch.Orders}, {"units seen", ch.Units}, {"units sold (by anyone)", ch.Sold},
			{"other buyers' units", ch.OtherUnits}, {"stock left", ch.After.Remaining}, {"initial", ch.After.Initial},
			{"invariant", okText(ch.After.Consistent())}, {"verify", okText(ch.Audit.OK())},
			{"orders stream", okText(len(ch.Missing) == 0)},
		}
		d.Check = append(d.Check, r.Hold.htmlRows(ch.Hold)...)
	}
	d.T, d.L, d.S = make([]float64, len(r.Samples)), make([]int64, len(r.Samples)), make([]int, len(r.Samples))
	for i, s := range r.Samples {
		d.T[i] = math.Round(float64(s.At.Microseconds())/100) / 10
		d.L[i], d.S[i] = s.LatencyUS, int(s.Status)
	}
	// json.Marshal escapes <, > and &, so the data cannot end the script.
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return reportTemplate.Execute(w, struct {
		Title string
		Data  template.JS
	}{r.Target, template.JS(data)})
}

// writeHTMLFile writes the HTML report to path.
func writeHTMLFile(path string, r *Report) error {
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	return nil
}
