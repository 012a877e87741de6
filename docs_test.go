package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/commands"
)

// TestDocs keeps the documentation true to the tree and to the command
// line: every relative link of README.md, CONTRIBUTING.md and docs/*.md
// names a file that exists, and its #anchor a heading of that file; every
// flashsale command line in a fenced code block uses only subcommands and
// flags that exist; and docs/cli.md has a section for every subcommand
// that names each of its flags.
func TestDocs(t *testing.T) {
	app := commands.NewApp("test")
	files, err := docFiles()
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]*markdown{}
	for _, f := range files {
		if docs[f], err = readMarkdown(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		for _, p := range checkLinks(docs[f], docs) {
			t.Error(p)
		}
		for _, p := range checkCommandLines(docs[f], app) {
			t.Error(p)
		}
	}
	cli, ok := docs[filepath.Join("docs", "cli.md")]
	if !ok {
		t.Fatal("docs/cli.md is missing")
	}
	for _, p := range checkReference(cli, app) {
		t.Error(p)
	}
}

// docFiles are the pages TestDocs reads.
func docFiles() ([]string, error) {
	pages, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		return nil, err
	}
	return append([]string{"README.md", "CONTRIBUTING.md"}, pages...), nil
}

// markdown is a page split into what the checks need.
type markdown struct {
	path     string
	lines    []string
	headings []heading
	blocks   []codeBlock
	// prose is the page with fenced blocks and code spans blanked out, so
	// that links are found only where they are links; it keeps the
	// page's line breaks, so offsets map back to line numbers.
	prose string
}

type heading struct {
	line  int // 1-based
	level int
	text  string // as rendered: code marks and link targets removed
}

type codeBlock struct {
	line  int    // 1-based line of the first line inside the fence
	info  string // the fence's info string, lower case: "sh", "json", ""
	lines []string
}

var (
	fenceRE   = regexp.MustCompile("^ {0,3}(```+|~~~+)\\s*(\\S*)")
	headingRE = regexp.MustCompile(`^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	linkRE    = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	inlineRE  = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
)

func readMarkdown(path string) (*markdown, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	md := &markdown{path: filepath.ToSlash(path), lines: strings.Split(string(b), "\n")}
	prose := make([]string, len(md.lines))
	var open *codeBlock
	var fence string
	for i, l := range md.lines {
		if open != nil {
			if strings.HasPrefix(strings.TrimSpace(l), fence) && strings.Trim(strings.TrimSpace(l), fence[:1]) == "" {
				md.blocks = append(md.blocks, *open)
				open = nil
			} else {
				open.lines = append(open.lines, l)
			}
			continue
		}
		if m := fenceRE.FindStringSubmatch(l); m != nil {
			open, fence = &codeBlock{line: i + 2, info: strings.ToLower(m[2])}, m[1]
			continue
		}
		prose[i] = l
		if m := headingRE.FindStringSubmatch(l); m != nil {
			md.headings = append(md.headings, heading{line: i + 1, level: len(m[1]), text: rendered(m[2])})
		}
	}
	if open != nil {
		return nil, fmt.Errorf("%s:%d: code block never closed", md.path, open.line-1)
	}
	md.prose = blankCodeSpans(strings.Join(prose, "\n"))
	return md, nil
}

// rendered is a heading's text as GitHub shows it: links reduced to their
// text, code marks gone.
func rendered(s string) string {
	return strings.ReplaceAll(inlineRE.ReplaceAllString(s, "$1"), "`", "")
}

// blankCodeSpans replaces the inside of every code span (a run of n
// backticks up to the next run of exactly n) with spaces, keeping line
// breaks.
func blankCodeSpans(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		n := runOf(b, i)
		end := -1
		for j := i + n; j < len(b); {
			if b[j] != '`' {
				j++
				continue
			}
			if m := runOf(b, j); m == n {
				end = j
				break
			} else {
				j += m
			}
		}
		if end < 0 {
			i += n
			continue
		}
		for k := i; k < end+n; k++ {
			if b[k] != '\n' {
				b[k] = ' '
			}
		}
		i = end + n
	}
	return string(b)
}

func runOf(b []byte, i int) int {
	n := 0
	for i+n < len(b) && b[i+n] == '`' {
		n++
	}
	return n
}

// anchors are the ids GitHub gives the page's headings.
func (md *markdown) anchors() map[string]bool {
	ids := map[string]bool{}
	seen := map[string]int{}
	for _, h := range md.headings {
		id := slug(h.text)
		if n := seen[id]; n > 0 {
			seen[id]++
			id = fmt.Sprintf("%s-%d", id, n)
		} else {
			seen[id] = 1
		}
		ids[id] = true
	}
	return ids
}

// slug is GitHub's anchor of a heading: lower case, each space a '-',
// every character but letters, digits, '-' and '_' dropped.
func slug(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (md *markdown) lineAt(offset int) int { return strings.Count(md.prose[:offset], "\n") + 1 }

// checkLinks reports every relative link of md whose file does not exist,
// or whose #anchor is no heading of its page.
func checkLinks(md *markdown, docs map[string]*markdown) []string {
	var problems []string
	for _, m := range linkRE.FindAllStringSubmatchIndex(md.prose, -1) {
		target := md.prose[m[2]:m[3]]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		where := fmt.Sprintf("%s:%d", md.path, md.lineAt(m[0]))
		path, anchor, _ := strings.Cut(target, "#")
		file := md.path
		if path != "" {
			file = filepath.ToSlash(filepath.Join(filepath.Dir(md.path), path))
			if _, err := os.Stat(file); err != nil {
				problems = append(problems, fmt.Sprintf("%s: link %s: no such file %s", where, target, file))
				continue
			}
		}
		if anchor == "" {
			continue
		}
		page, err := pageOf(file, docs)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: link %s: %v", where, target, err))
			continue
		}
		if !page.anchors()[anchor] {
			problems = append(problems, fmt.Sprintf("%s: link %s: %s has no heading #%s", where, target, file, anchor))
		}
	}
	return problems
}

func pageOf(file string, docs map[string]*markdown) (*markdown, error) {
	if md, ok := docs[filepath.FromSlash(file)]; ok {
		return md, nil
	}
	if !strings.HasSuffix(file, ".md") {
		return nil, errors.New("an anchor is checked only in a Markdown page")
	}
	return readMarkdown(file)
}

// shellInfo are the info strings of fences whose every line is a command.
var shellInfo = []string{"sh", "bash", "shell", "zsh"}

// commandLine is one shell line of a code block: joined over '\'
// continuations, with the output shown after it when it had a "$ "
// prompt.
type commandLine struct {
	line   int
	text   string
	output string
}

// commandLines are the lines of b that a shell would run: those after a
// "$ " prompt when the block has prompts, else every line of a shell
// block, else none (the block shows output or data).
func (b codeBlock) commandLines() []commandLine {
	prompts := slices.ContainsFunc(b.lines, func(l string) bool { return strings.HasPrefix(l, "$ ") })
	if !prompts && !slices.Contains(shellInfo, b.info) {
		return nil
	}
	var out []commandLine
	for i := 0; i < len(b.lines); i++ {
		l := b.lines[i]
		if prompts {
			if !strings.HasPrefix(l, "$ ") {
				if len(out) > 0 {
					out[len(out)-1].output += l + "\n"
				}
				continue
			}
			l = strings.TrimPrefix(l, "$ ")
		}
		c := commandLine{line: b.line + i}
		for strings.HasSuffix(l, `\`) && i+1 < len(b.lines) {
			c.text += strings.TrimSuffix(l, `\`) + " "
			i++
			l = b.lines[i]
		}
		c.text += l
		out = append(out, c)
	}
	return out
}

// checkCommandLines reports every flashsale command line of md's code
// blocks that names a subcommand or flag the app does not have. A command
// shown with a usage error as its output must have one.
func checkCommandLines(md *markdown, app *cli.App) []string {
	var problems []string
	for _, b := range md.blocks {
		for _, c := range b.commandLines() {
			wantMistake := strings.Contains(c.output, "(see 'flashsale")
			for _, args := range flashsaleCommands(c.text) {
				err := checkArgs(app, args)
				switch {
				case err != nil && !wantMistake:
					problems = append(problems, fmt.Sprintf("%s:%d: %v", md.path, c.line, err))
				case err == nil && wantMistake:
					problems = append(problems, fmt.Sprintf("%s:%d: shown failing with a usage error, but %q is a valid command line", md.path, c.line, strings.Join(args, " ")))
				}
			}
		}
	}
	return problems
}

// flashsaleCommands are the argument lists given to flashsale in a shell
// line: each simple command (split at |, &, ;, &&, || and parentheses,
// command substitutions included) that runs flashsale, ./flashsale,
// /path/to/flashsale or `go run .`, after any VAR=value assignments, with
// redirections and the comment dropped.
func flashsaleCommands(line string) [][]string {
	var out [][]string
	for _, words := range simpleCommands(line) {
		for len(words) > 0 && isAssignment(words[0]) {
			words = words[1:]
		}
		switch {
		case len(words) > 0 && filepath.Base(words[0]) == "flashsale":
			out = append(out, words[1:])
		case len(words) > 2 && words[0] == "go" && words[1] == "run" && (words[2] == "." || words[2] == "./"):
			out = append(out, words[3:])
		}
	}
	return out
}

var assignmentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func isAssignment(w string) bool { return assignmentRE.MatchString(w) }

// simpleCommands splits a shell line into its simple commands' words,
// with quotes removed. It knows enough shell for documentation: quotes,
// backslashes, operators, redirections and comments.
func simpleCommands(line string) [][]string {
	var (
		cmds  [][]string
		words []string
		word  strings.Builder
		inW   bool // a word has started (it may be "")
	)
	endWord := func() {
		if inW {
			words = append(words, word.String())
		}
		word.Reset()
		inW = false
	}
	endCmd := func() {
		endWord()
		cmds = append(cmds, dropRedirections(words))
		words = nil
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				j = len(line) - i - 1
			}
			word.WriteString(line[i+1 : i+1+j])
			inW, i = true, i+1+j
		case c == '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) {
					j++
				}
				word.WriteByte(line[j])
			}
			inW, i = true, j
		case c == '\\' && i+1 < len(line):
			word.WriteByte(line[i+1])
			inW, i = true, i+1
		case c == '#' && !inW:
			endCmd()
			return cmds
		case c == ' ' || c == '\t':
			endWord()
		case strings.IndexByte("|&;()`", c) >= 0:
			// "$(" and "<(" start a command of their own, as "(" does.
			if inW && (word.String() == "$" || word.String() == "<") {
				word.Reset()
				inW = false
			}
			endCmd()
		default:
			word.WriteByte(c)
			inW = true
		}
	}
	endCmd()
	return cmds
}

var redirectionRE = regexp.MustCompile(`^[0-9]*(>>?|<)&?[0-9]*$`)

// dropRedirections removes "> file", "2>&1" and the like from words.
func dropRedirections(words []string) []string {
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case redirectionRE.MatchString(w):
			if !strings.HasSuffix(w, "&1") && !strings.HasSuffix(w, "&2") {
				i++ // the file
			}
		case strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>"):
		default:
			out = append(out, w)
		}
	}
	return out
}

// checkArgs walks args (what follows "flashsale") down the app's command
// tree as urfave/cli would after commands.ReorderArgs: every flag must be
// one of the command reached at that point (flags may follow positional
// arguments), every word before the last command a command name.
func checkArgs(app *cli.App, args []string) error {
	path, flags, cmds := "flashsale", app.Flags, app.Commands
	top := true
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return nil
		case isFlag(a):
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			f, ok := lookupFlag(flags, name, top)
			if !ok {
				return fmt.Errorf("%s: flag %s is not defined (see '%s --help')", path, a, path)
			}
			if f != nil && takesValue(f) && !hasValue {
				i++
			}
		case len(cmds) == 0:
			// a positional argument of the command
		case a == "help" || a == "h":
			return nil
		default:
			cmd := findCommand(cmds, a)
			if cmd == nil {
				return fmt.Errorf("%s: unknown command %q (see '%s --help')", path, a, path)
			}
			path, flags, cmds, top = path+" "+cmd.Name, cmd.Flags, cmd.Subcommands, false
		}
	}
	return nil
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' && (a[1] < '0' || a[1] > '9') }

// lookupFlag finds name among flags, and among urfave/cli's own: --help
// everywhere, --version at the top, the completion flag (nil: a bool).
func lookupFlag(flags []cli.Flag, name string, top bool) (cli.Flag, bool) {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f, true
		}
	}
	switch name {
	case "help", "h", "generate-bash-completion":
		return nil, true
	case "version", "v":
		return nil, top
	}
	return nil, false
}

func takesValue(f cli.Flag) bool {
	if df, ok := f.(cli.DocGenerationFlag); ok {
		return df.TakesValue()
	}
	return true
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// checkReference reports every subcommand of app that the CLI reference
// has no "flashsale PATH" heading for, and every flag of one that its
// section (with the sections it is part of) does not name.
func checkReference(md *markdown, app *cli.App) []string {
	var problems []string
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := append(slices.Clone(path), c.Name)
			text, err := md.sections(p)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", md.path, err))
			}
			for _, f := range c.Flags {
				if spelt := flagSpelling(f); text != "" && !mentions(text, spelt) {
					problems = append(problems, fmt.Sprintf("%s: the section of flashsale %s does not name its flag %s", md.path, strings.Join(p, " "), spelt))
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
	return problems
}

// sections is the text of the section headed "flashsale PATH" and of
// every section above it, up to the next heading of the same level or
// higher.
func (md *markdown) sections(path []string) (string, error) {
	want := "flashsale " + strings.Join(path, " ")
	at := slices.IndexFunc(md.headings, func(h heading) bool { return h.text == want })
	if at < 0 {
		return "", fmt.Errorf("no section headed %q", want)
	}
	var text strings.Builder
	level := md.headings[at].level + 1
	for i := at; i >= 0; i-- {
		if h := md.headings[i]; h.level < level {
			level = h.level
			text.WriteString(md.section(i))
		}
	}
	return text.String(), nil
}

// section is the text under heading i up to the next heading of its
// level or higher.
func (md *markdown) section(i int) string {
	end := len(md.lines)
	for _, h := range md.headings[i+1:] {
		if h.level <= md.headings[i].level {
			end = h.line - 1
			break
		}
	}
	return strings.Join(md.lines[md.headings[i].line-1:end], "\n")
}

// flagSpelling is how the reference must name f: --name by its first long
// name, -x when it has only a short one.
func flagSpelling(f cli.Flag) string {
	names := f.Names()
	for _, n := range names {
		if len(n) > 1 {
			return "--" + n
		}
	}
	return "-" + names[0]
}

// mentions reports whether text names flag, not merely a longer flag it
// begins (--tls in --tls-ca).
func mentions(text, flag string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], flag)
		if j < 0 {
			return false
		}
		end := i + j + len(flag)
		if end == len(text) || !(text[end] == '-' || text[end] == '_' || unicode.IsLetter(rune(text[end])) || unicode.IsDigit(rune(text[end]))) {
			return true
		}
		i = end
	}
}

// TestDocsChecker checks the checker: what it accepts and what it refuses.
func TestDocsChecker(t *testing.T) {
	app := commands.NewApp("test")
	for _, tc := range []struct {
		line    string
		wantErr []string // one per flashsale command: "" for none
	}{
		{"flashsale serve --listen :9000", []string{""}},
		{"./flashsale bench -n 10000 -c 100 --init 100", []string{""}},
		{"go run . demo -n 100", []string{""}},
		{"REDIS_ADDR=127.0.0.1:7000 flashsale admin init iphone15 100   # detected", []string{""}},
		{"flashsale admin init iphone15 100 --per-user-limit 2", []string{""}},
		{"flashsale admin init --per-user=2 iphone15 100", []string{"flag --per-user=2 is not defined"}},
		{"./flashsale serve &", []string{""}},
		{"flashsale bench --json | jq .", []string{""}},
		{"source <(flashsale completion bash)      # or save it", []string{""}},
		{"flashsale completion fish > ~/.config/fish/completions/flashsale.fish", []string{""}},
		{"x=$(flashsale admin token --json u1) && flashsale buy p u1 --listne :1", []string{"", "flashsale buy: flag --listne is not defined"}},
		{"flashsale admin satus iphone15", []string{`flashsale admin: unknown command "satus"`}},
		{"flashsale --version", []string{""}},
		{"flashsale serve --version", []string{"flashsale serve: flag --version is not defined"}},
		{"flashsale serve --tls-cert a.pem --tls-key 'b c.pem' --help", []string{""}},
		{"flashsale buy p u -- --not-a-flag", []string{""}},
		{"go build -o flashsale . # not a run", nil},
		{`echo "flashsale --nonsense"`, nil},
		{"# flashsale --nonsense", nil},
	} {
		cmds := flashsaleCommands(tc.line)
		if len(cmds) != len(tc.wantErr) {
			t.Errorf("%q: %d flashsale commands %q, want %d", tc.line, len(cmds), cmds, len(tc.wantErr))
			continue
		}
		for i, args := range cmds {
			err := checkArgs(app, args)
			if tc.wantErr[i] == "" && err != nil || tc.wantErr[i] != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr[i])) {
				t.Errorf("%q: command %d: %v, want %q", tc.line, i, err, tc.wantErr[i])
			}
		}
	}
	for text, want := range map[string]string{
		"Durability: what an acknowledged purchase survives": "durability-what-an-acknowledged-purchase-survives",
		"flashsale buy, stock, ping":                         "flashsale-buy-stock-ping",
		rendered("`flashsale admin` and [JWT](auth.md)"):     "flashsale-admin-and-jwt",
		"HTTP against net/http and TLV":                      "http-against-nethttp-and-tlv",
		"Redis_CPU → 1.0×":                                   "redis_cpu--10",
	} {
		if got := slug(text); got != want {
			t.Errorf("slug(%q) = %q, want %q", text, got, want)
		}
	}
}
