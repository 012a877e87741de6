package commands

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/server"
)

// maxFairness bounds the aggressive group's fairness figure among those
// who joined before the opening: a fair shuffle gives them their share of
// people (figure 1); 2 leaves room for chance on a few units (and is the
// outside check's 20% of the units for 10% of the people).
const maxFairness = 2.0

// minChance is how likely a fair draw must make the aggressive group's
// win for a figure above maxFairness to pass as chance: on a few units a
// fair shuffle gives a small group twice its share now and then (one run
// in twenty for 6 of 30 early joiners winning 4 of 9 units), and a room
// that let polling decide gives chances far below this.
const minChance = 0.001

// maxSoldOutLag bounds how long after the last sale every waiter must have
// heard SOLD_OUT.
const maxSoldOutLag = 2 * time.Second

// RoomMetrics is what bench --room measured of the waiting room.
type RoomMetrics struct {
	Buyers, Aggressive int
	Factor             int
	Poll               time.Duration // an ordinary buyer's poll interval
	Rate               int64         // the room's admissions a second, as set
	// Early counts the buyers whose join was answered before the opening
	// (no position yet): their places were drawn at it.
	Early int
	// Polls per buyer on average, aggressive and ordinary.
	AggressivePolls, OrdinaryPolls float64
	// All is each group's share of everyone, EarlyOnly among the early
	// joiners: [0] aggressive, [1] ordinary.
	All, EarlyOnly [2]GroupShare
	// Judged: every aggressive buyer joined before the opening, so the
	// shuffle alone placed them, and EarlyOnly[0].Figure is held to
	// maxFairness. Contest: some early joiner won nothing.
	Judged, Contest bool
	// Chance is the probability that a fair draw among the early joiners
	// gives the aggressive ones at least as many winners as they had
	// (the hypergeometric tail); a figure above maxFairness fails only
	// when Chance is under minChance.
	Chance  float64
	Late    LateOrder
	Admit   AdmitRate
	SoldOut SoldOutLag
	Probes  ProbeCount
	Pass    bool
}

// GroupShare is a group's share of people against its share of units.
type GroupShare struct {
	People      int
	PeopleShare float64
	Units       int64
	UnitShare   float64
	Figure      float64 // UnitShare / PeopleShare: 1 is fair
}

// LateOrder compares, for the late joiners admitted, admission order with
// arrival (join) order.
type LateOrder struct {
	Admitted int
	Pairs    int64
	InOrder  float64 // share of pairs admitted in the order they joined
	Tau      float64 // Kendall's tau: 1 in order, −1 reversed
	// OutOfOrder counts the buyers admitted more than Slack (an ordinary
	// poll, the server's poll cache and 100 ms) before one who joined
	// before them: beyond what polling explains.
	OutOfOrder int
	Slack      time.Duration
}

// AdmitRate is the rate admissions were seen at, first to last.
type AdmitRate struct {
	Admitted int
	Window   time.Duration
	Rate     float64 // admissions a second over Window
	// Worst is the 5 s window's rate furthest from the set one (only when
	// Window is 10 s or more, else 0).
	Worst float64
}

// SoldOutLag is how long after the last sale the waiters (joined, did not
// buy) heard SOLD_OUT.
type SoldOutLag struct {
	Waiters, Told int
	Max, P99      time.Duration
}

// ProbeCount counts the purchases sent without a valid admission.
type ProbeCount struct {
	Sent, Refused, Sold int // Sold: any answer that sold (must be 0)
}

// newRoomMetrics measures res.
func newRoomMetrics(res *loadgen.RoomResult, cfg loadgen.RoomConfig, rate int64) *RoomMetrics {
	m := &RoomMetrics{Buyers: len(res.Buyers), Aggressive: cfg.Aggressive, Factor: cfg.Factor, Poll: cfg.Poll, Rate: rate}
	m.All = shares(res.Buyers, func(loadgen.Buyer) bool { return true })
	m.EarlyOnly = shares(res.Buyers, func(b loadgen.Buyer) bool { return b.Early })
	m.Judged = cfg.Aggressive > 0
	var polls, early, won [2]int
	for _, b := range res.Buyers {
		g := group(b)
		polls[g] += b.Polls
		if b.Early {
			m.Early++
			m.Contest = m.Contest || b.Units == 0
			early[g]++
			if b.Units > 0 {
				won[g]++
			}
		}
		m.Judged = m.Judged && (!b.Aggressive || b.Early)
	}
	m.AggressivePolls = perHead(polls[0], m.All[0].People)
	m.OrdinaryPolls = perHead(polls[1], m.All[1].People)
	m.Late = lateOrder(res.Buyers, cfg.Poll+server.DefaultPollInterval+100*time.Millisecond)
	m.Admit = admitRate(res.Buyers, float64(rate))
	m.SoldOut = soldOutLag(res.Buyers)
	for _, p := range res.Probes {
		m.Probes.Sent++
		switch {
		case p.Code == engine.CodeNotAdmitted:
			m.Probes.Refused++
		case p.Status == "SUCCESS" || p.Status == "RESERVED":
			m.Probes.Sold++
		}
	}
	m.Chance = tailChance(early[0]+early[1], early[0], won[0]+won[1], won[0])
	m.Pass = m.Probes.Sold == 0 && m.Late.OutOfOrder == 0 && (!m.Judged || m.fair()) &&
		m.SoldOut.Told == m.SoldOut.Waiters && m.SoldOut.Max <= maxSoldOutLag
	return m
}

// fair reports whether the aggressive group's figure among the early
// joiners is within maxFairness, or above it by a chance a fair draw
// gives at least minChance.
func (m *RoomMetrics) fair() bool {
	return m.EarlyOnly[0].Figure <= maxFairness || m.Chance >= minChance
}

// tailChance is the probability that n people drawn at random from
// people, of whom group are in a group, include at least k of it.
func tailChance(people, group, n, k int) float64 {
	var p float64
	for x := k; x <= min(group, n); x++ {
		p += math.Exp(lnChoose(group, x) + lnChoose(people-group, n-x) - lnChoose(people, n))
	}
	return min(p, 1)
}

// lnChoose is ln(n choose k), or -Inf when k is out of range.
func lnChoose(n, k int) float64 {
	if k < 0 || k > n {
		return math.Inf(-1)
	}
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

func group(b loadgen.Buyer) int {
	if b.Aggressive {
		return 0
	}
	return 1
}

func perHead(n, people int) float64 {
	if people == 0 {
		return 0
	}
	return float64(n) / float64(people)
}

// shares are the groups' shares among the buyers in scope.
func shares(buyers []loadgen.Buyer, in func(loadgen.Buyer) bool) [2]GroupShare {
	var g [2]GroupShare
	var people int
	var units int64
	for _, b := range buyers {
		if in(b) {
			g[group(b)].People++
			g[group(b)].Units += b.Units
			people++
			units += b.Units
		}
	}
	for i := range g {
		g[i].PeopleShare = perHead(g[i].People, people)
		if units > 0 {
			g[i].UnitShare = float64(g[i].Units) / float64(units)
		}
		if g[i].PeopleShare > 0 {
			g[i].Figure = g[i].UnitShare / g[i].PeopleShare
		}
	}
	return g
}

// lateOrder compares the late joiners' admissions with their joins.
func lateOrder(buyers []loadgen.Buyer, slack time.Duration) LateOrder {
	var late []loadgen.Buyer
	for _, b := range buyers {
		if !b.Early && !b.Admitted.IsZero() {
			late = append(late, b)
		}
	}
	slices.SortFunc(late, func(a, b loadgen.Buyer) int { return a.Joined.Compare(b.Joined) })
	o := LateOrder{Admitted: len(late), Slack: slack, InOrder: 1, Tau: 1}
	var in int64
	latest := time.Time{} // the latest admission of those who joined before
	for j, b := range late {
		for _, a := range late[:j] {
			o.Pairs++
			if !b.Admitted.Before(a.Admitted) {
				in++
			}
		}
		if latest.Sub(b.Admitted) > slack {
			o.OutOfOrder++
		}
		if b.Admitted.After(latest) {
			latest = b.Admitted
		}
	}
	if o.Pairs > 0 {
		o.InOrder = float64(in) / float64(o.Pairs)
		o.Tau = 2*o.InOrder - 1
	}
	return o
}

// admitRate is the rate the admissions were seen at, and the worst 5 s.
func admitRate(buyers []loadgen.Buyer, rate float64) AdmitRate {
	var at []time.Time
	for _, b := range buyers {
		if !b.Admitted.IsZero() {
			at = append(at, b.Admitted)
		}
	}
	slices.SortFunc(at, time.Time.Compare)
	a := AdmitRate{Admitted: len(at)}
	if len(at) < 2 {
		return a
	}
	a.Window = at[len(at)-1].Sub(at[0])
	if a.Window > 0 {
		a.Rate = float64(len(at)-1) / a.Window.Seconds()
	}
	const span = 5 * time.Second
	if a.Window < 2*span {
		return a
	}
	for i, end := 0, 0; at[i].Add(span).Before(at[len(at)-1]); i++ {
		for end < len(at) && at[end].Before(at[i].Add(span)) {
			end++
		}
		if r := float64(end-i) / span.Seconds(); a.Worst == 0 || abs(r-rate) > abs(a.Worst-rate) {
			a.Worst = r
		}
	}
	return a
}

func abs(f float64) float64 { return max(f, -f) }

// soldOutLag is how long after the last sale the waiters heard SOLD_OUT.
func soldOutLag(buyers []loadgen.Buyer) SoldOutLag {
	var last time.Time
	for _, b := range buyers {
		if b.BoughtAt.After(last) {
			last = b.BoughtAt
		}
	}
	var s SoldOutLag
	var lags []time.Duration
	for _, b := range buyers {
		if b.Joined.IsZero() || b.Units > 0 {
			continue
		}
		s.Waiters++
		if !b.SoldOut.IsZero() {
			s.Told++
			lags = append(lags, max(b.SoldOut.Sub(last), 0))
		}
	}
	l := summariseLags(lags)
	s.Max, s.P99 = l.Max, l.P99
	return s
}

// writeText writes the room's part of the report.
func (m *RoomMetrics) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "Room:              %d buyers (%d joined before the opening), %d aggressive at %d× connections and polls; admits %d/s; polls per buyer %.1f aggressive, %.1f ordinary\n",
		m.Buyers, m.Early, m.Aggressive, m.Factor, m.Rate, m.AggressivePolls, m.OrdinaryPolls)
	for _, s := range []struct {
		name string
		g    [2]GroupShare
	}{{"everyone", m.All}, {"early joiners", m.EarlyOnly}} {
		fmt.Fprintf(b, "Shares (%s): aggressive %d people (%s) won %d units (%s), figure %.2f; ordinary %d (%s) won %d (%s), figure %.2f\n", s.name,
			s.g[0].People, pct(s.g[0].PeopleShare), s.g[0].Units, pct(s.g[0].UnitShare), s.g[0].Figure,
			s.g[1].People, pct(s.g[1].PeopleShare), s.g[1].Units, pct(s.g[1].UnitShare), s.g[1].Figure)
	}
	switch {
	case !m.Judged:
		fmt.Fprintf(b, "Fairness:          not judged: some aggressive buyers joined after the opening, where arrival order rightly decides\n")
	case !m.Contest:
		fmt.Fprintf(b, "Fairness:          %s: every early joiner won, so the shuffle decided nothing (give fewer units than early joiners)\n", passText(m.fair()))
	default:
		fmt.Fprintf(b, "Fairness:          %s: aggressive figure %.2f among the early joiners (at most %.0f, or above it by a chance of %g or more; a fair shuffle gives 1), chance %.3g\n",
			passText(m.fair()), m.EarlyOnly[0].Figure, maxFairness, minChance, m.Chance)
	}
	l := m.Late
	fmt.Fprintf(b, "Late Order:        %s: %d late joiners admitted, %s of %d pairs in join order (tau %.3f), %d admitted over %s before an earlier joiner\n",
		passText(l.OutOfOrder == 0), l.Admitted, pct(l.InOrder), l.Pairs, l.Tau, l.OutOfOrder, l.Slack)
	a := m.Admit
	fmt.Fprintf(b, "Admit Rate:        %.1f/s measured over %s (%d admissions) against %d/s set", a.Rate, a.Window.Round(time.Millisecond), a.Admitted, m.Rate)
	if a.Worst > 0 {
		fmt.Fprintf(b, ", worst 5 s %.1f/s", a.Worst)
	}
	b.WriteString(" (lower when the line runs dry)\n")
	s := m.SoldOut
	fmt.Fprintf(b, "Sold Out Seen:     %s: %d of %d waiters told SOLD_OUT, max %s, p99 %s after the last sale (at most %s)\n",
		passText(s.Told == s.Waiters && s.Max <= maxSoldOutLag), s.Told, s.Waiters, s.Max.Round(time.Millisecond), s.P99.Round(time.Millisecond), maxSoldOutLag)
	fmt.Fprintf(b, "Probes:            %s: %d purchases without a valid admission, %d refused NOT_ADMITTED, %d sold\n",
		passText(m.Probes.Sold == 0), m.Probes.Sent, m.Probes.Refused, m.Probes.Sold)
}

// jsonRoom is RoomMetrics as bench --json prints it.
type jsonRoom struct {
	Buyers          int          `json:"buyers"`
	Early           int          `json:"early"`
	Aggressive      int          `json:"aggressive"`
	Factor          int          `json:"factor"`
	PollMS          float64      `json:"poll_ms"`
	Rate            int64        `json:"rate"`
	AggressivePolls float64      `json:"aggressive_polls_per_buyer"`
	OrdinaryPolls   float64      `json:"ordinary_polls_per_buyer"`
	All             [2]jsonShare `json:"everyone"` // [aggressive, ordinary]
	EarlyOnly       [2]jsonShare `json:"early_joiners"`
	Judged          bool         `json:"fairness_judged"`
	Contest         bool         `json:"contest"`
	Fairness        float64      `json:"fairness"` // the aggressive group's figure among the early joiners
	Chance          float64      `json:"fairness_chance"`
	LateAdmitted    int          `json:"late_admitted"`
	LateInOrder     float64      `json:"late_pairs_in_order"`
	LateTau         float64      `json:"late_tau"`
	LateOutOfOrder  int          `json:"late_out_of_order"`
	AdmitRate       float64      `json:"admit_rate"`
	AdmitWorst5s    float64      `json:"admit_rate_worst_5s"`
	AdmitWindowS    float64      `json:"admit_window_s"`
	Waiters         int          `json:"waiters"`
	ToldSoldOut     int          `json:"told_sold_out"`
	SoldOutMaxMS    float64      `json:"sold_out_max_ms"`
	SoldOutP99MS    float64      `json:"sold_out_p99_ms"`
	Probes          int          `json:"probes"`
	ProbesRefused   int          `json:"probes_refused"`
	ProbesSold      int          `json:"probes_sold"`
	Pass            bool         `json:"pass"`
}

type jsonShare struct {
	People      int     `json:"people"`
	PeopleShare float64 `json:"people_share"`
	Units       int64   `json:"units"`
	UnitShare   float64 `json:"unit_share"`
	Figure      float64 `json:"figure"`
}

func jsonShares(g [2]GroupShare) [2]jsonShare {
	var j [2]jsonShare
	for i, s := range g {
		j[i] = jsonShare{s.People, round3(s.PeopleShare), s.Units, round3(s.UnitShare), round3(s.Figure)}
	}
	return j
}

func (m *RoomMetrics) json() *jsonRoom {
	if m == nil {
		return nil
	}
	return &jsonRoom{
		Buyers: m.Buyers, Early: m.Early, Aggressive: m.Aggressive, Factor: m.Factor, PollMS: msOf(m.Poll), Rate: m.Rate,
		AggressivePolls: round3(m.AggressivePolls), OrdinaryPolls: round3(m.OrdinaryPolls),
		All: jsonShares(m.All), EarlyOnly: jsonShares(m.EarlyOnly), Judged: m.Judged, Contest: m.Contest,
		Fairness: round3(m.EarlyOnly[0].Figure), Chance: m.Chance, LateAdmitted: m.Late.Admitted, LateInOrder: round3(m.Late.InOrder),
		LateTau: round3(m.Late.Tau), LateOutOfOrder: m.Late.OutOfOrder, AdmitRate: round3(m.Admit.Rate),
		AdmitWorst5s: round3(m.Admit.Worst), AdmitWindowS: round3(m.Admit.Window.Seconds()),
		Waiters: m.SoldOut.Waiters, ToldSoldOut: m.SoldOut.Told, SoldOutMaxMS: msOf(m.SoldOut.Max), SoldOutP99MS: msOf(m.SoldOut.P99),
		Probes: m.Probes.Sent, ProbesRefused: m.Probes.Refused, ProbesSold: m.Probes.Sold, Pass: m.Pass,
	}
}

// passText marks a line of the room's report.
func passText(ok bool) string {
	if ok {
		return "✓ PASS"
	}
	return "✗ FAIL"
}
