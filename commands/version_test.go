package commands

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tt := range []struct {
		name     string
		version  string
		settings []debug.BuildSetting
		want     string
	}{
		{"go install m@v", "v1.2.3", nil, "v1.2.3"},
		{"pseudo-version of a checkout", "v0.0.0-20260101000000-0123456789ab+dirty", vcs(rev, "true"), "v0.0.0-20260101000000-0123456789ab+dirty"},
		{"devel with a clean revision", "(devel)", vcs(rev, "false"), "0123456789ab"},
		{"devel with changes", "(devel)", vcs(rev, "true"), "0123456789ab-dirty"},
		{"short revision", "(devel)", vcs("abc", "false"), "abc"},
		{"devel without VCS (-buildvcs=false)", "(devel)", nil, "dev"},
		{"no version at all", "", nil, "dev"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/flashsale/flashsale", Version: tt.version}, Settings: tt.settings}
			if got := versionOf(info); got != tt.want {
				t.Errorf("versionOf(%s, %v) = %q, want %q", tt.version, tt.settings, got, tt.want)
			}
		})
	}
}

func TestBuildVersionPrefersTheLinkerFlag(t *testing.T) {
	if got := BuildVersion("v9.8.7"); got != "v9.8.7" {
		t.Errorf("BuildVersion(v9.8.7) = %q", got)
	}
	if got := BuildVersion("dev"); got == "" {
		t.Error(`BuildVersion("dev") is empty`)
	}
}

func TestVersionCommand(t *testing.T) {
	want := "flashsale version test\n" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if got := mustRun(t, "version"); got != want {
		t.Errorf("flashsale version = %q, want %q", got, want)
	}
	if got := mustRun(t, "--version"); got != "flashsale version test\n" {
		t.Errorf("flashsale --version = %q", got)
	}
	if _, err := runApp(t, "version", "extra"); ExitCode(err) != 2 {
		t.Errorf("flashsale version extra: %v, exit code %d, want 2", err, ExitCode(err))
	}
}
