package commands

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen"
)

// progressEvery is how often the progress line is redrawn.
const progressEvery = 100 * time.Millisecond

// startProgress redraws a progress line of g on w (a terminal) until the
// returned function is called, which erases it; total and limit are the
// run's -n and --duration.
func startProgress(w io.Writer, g *loadgen.Generator, total int, limit time.Duration) (stop func()) {
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		var (
			width    int   // of the line on screen
			lastDone int64 // at the last tick
			last     = time.Now()
			rate     float64
		)
		for {
			select {
			case <-quit:
				if width > 0 {
					io.WriteString(w, "\r"+strings.Repeat(" ", width)+"\r")
				}
				return
			case now := <-t.C:
				done := g.Done()
				if dt := now.Sub(last).Seconds(); dt > 0 {
					// Smoothed over about a second.
					r := float64(done-lastDone) / dt
					if rate == 0 {
						rate = r
					} else {
						rate += (r - rate) * 0.3
					}
				}
				lastDone, last = done, now
				line := progressLine(done, total, g.Elapsed(), limit, rate)
				pad := ""
				if n := len(line); n < width {
					pad = strings.Repeat(" ", width-n)
				} else {
					width = n
				}
				io.WriteString(w, "\r"+line+pad)
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

// progressBarWidth is the bar's width in characters.
const progressBarWidth = 30

// progressLine is the progress of a run that has done requests of total
// (0 = unlimited) in elapsed of limit (0 = none), currently at rate:
//
//	[=========>                    ]  33%  66000/200000 req  85123 req/s
//	[=========>                    ]  33%  3.3s/10s  166000 req  50012 req/s
func progressLine(done int64, total int, elapsed, limit time.Duration, rate float64) string {
	var frac float64
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	if limit > 0 {
		frac = max(frac, elapsed.Seconds()/limit.Seconds())
	}
	frac = min(max(frac, 0), 1)
	fill := int(frac*progressBarWidth + 1e-9)
	b := make([]byte, 0, 96)
	b = append(b, '[')
	for i := range progressBarWidth {
		switch {
		case i < fill:
			b = append(b, '=')
		case i == fill:
			b = append(b, '>')
		default:
			b = append(b, ' ')
		}
	}
	b = append(b, "] "...)
	pct := strconv.Itoa(int(frac*100 + 1e-9))
	b = append(b, strings.Repeat(" ", 3-len(pct))...)
	b = append(b, pct...)
	b = append(b, "%  "...)
	if limit > 0 {
		b = append(b, elapsed.Round(100*time.Millisecond).String()...)
		b = append(b, '/')
		b = append(b, limit.String()...)
		b = append(b, "  "...)
	}
	b = strconv.AppendInt(b, done, 10)
	if total > 0 {
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(total), 10)
	}
	b = append(b, " req  "...)
	b = strconv.AppendFloat(b, rate, 'f', 0, 64)
	b = append(b, " req/s"...)
	return string(b)
}
