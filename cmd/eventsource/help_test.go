package main

import (
	"slices"
	"sort"
	"strings"
	"testing"
)

// offline points both services at a port nothing listens on: a command
// that wrongly got past its flags fails instead of touching the shared
// ones.
var offline = []string{"MYSQL_PORT=1", "REDIS_PORT=1", "MYSQL_DATABASE=es_eventsource_never"}

// helpCommands is every command as it is run, the internal ones and those
// with subcommands of their own included, and what each one's help must
// mention besides its usage line.
func helpCommands() map[string][]string {
	cmds := map[string][]string{
		"actors stop":      nil,
		"consumers reset":  {"-position"},
		"consumers delete": nil,
	}
	for name := range commands {
		cmds[name] = nil
	}
	cmds["actors"] = []string{"eventsource actors stop", "-watch", "-prefix"}
	cmds["consumers"] = []string{"consumers reset", "consumers delete", "-json"}
	cmds["fetch"] = []string{"-fetch-channel"}
	cmds["persist"] = []string{"-persist-channel"}
	return cmds
}

// Asking for help is no misuse: the usage goes to stdout with status 0.
// A flag a command does not know is: the usage goes to stderr with 2.
func TestHelpOfEveryCommand(t *testing.T) {
	t.Parallel()
	for name, want := range helpCommands() {
		cmd := strings.Fields(name)
		for _, flag := range []string{"-h", "--help", "-help"} {
			t.Run(name+" "+flag, func(t *testing.T) {
				t.Parallel()
				res := runBinary(t, offline, append(cmd, flag)...)
				if res.code != 0 || res.stderr != "" {
					t.Errorf("exit status %d, stderr %q; want 0 and nothing", res.code, res.stderr)
				}
				if !strings.HasPrefix(res.stdout, "usage: eventsource "+name+" ") && res.stdout != "usage: eventsource "+name+"\n" {
					t.Errorf("stdout does not start with the usage of %s:\n%s", name, res.stdout)
				}
				for _, w := range want {
					if !strings.Contains(res.stdout, w) {
						t.Errorf("stdout does not mention %q:\n%s", w, res.stdout)
					}
				}
			})
		}
		t.Run(name+" --no-such-flag", func(t *testing.T) {
			t.Parallel()
			res := runBinary(t, offline, append(cmd, "--no-such-flag")...)
			if res.code != 2 || res.stdout != "" {
				t.Errorf("exit status %d, stdout %q; want 2 and nothing", res.code, res.stdout)
			}
			for _, w := range []string{"flag provided but not defined: -no-such-flag", "usage: eventsource " + name} {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, res.stderr)
				}
			}
		})
	}
}

// The list of commands: on stdout for help, on stderr with status 2 for
// no command at all; internal commands left out; the summaries in one
// column.
func TestCommandList(t *testing.T) {
	t.Parallel()
	var visible []string
	for name, cmd := range commands {
		if !cmd.hidden {
			visible = append(visible, name)
		}
	}
	sort.Strings(visible)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"-h", []string{"-h"}, 0},
		{"--help", []string{"--help"}, 0},
		{"help", []string{"help"}, 0},
		{"no command", nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runBinary(t, offline, tt.args...)
			out, quiet := res.stdout, res.stderr
			if tt.code != 0 {
				out, quiet = res.stderr, res.stdout
			}
			if res.code != tt.code || quiet != "" {
				t.Fatalf("exit status %d, other stream %q; want %d and nothing", res.code, quiet, tt.code)
			}
			if !strings.HasPrefix(out, "usage: eventsource <command> [flags]\n") {
				t.Errorf("the list does not start with the usage line:\n%s", out)
			}
			var listed []string
			column := -1
			for line := range strings.Lines(out) {
				rest, ok := strings.CutPrefix(line, "  ")
				if !ok {
					continue
				}
				name, summary, _ := strings.Cut(rest, " ")
				listed = append(listed, name)
				at := len(line) - len(strings.TrimLeft(summary, " "))
				if column == -1 {
					column = at
				}
				if at != column || at <= len("  ")+len(name) {
					t.Errorf("summary of %s starts at column %d, the first at %d:\n%s", name, at, column, out)
				}
			}
			if !slices.Equal(listed, visible) {
				t.Errorf("listed %q, want %q (internal commands left out)", listed, visible)
			}
			if strings.Contains(out, "bench-pool") {
				t.Errorf("the list names the internal bench-pool:\n%s", out)
			}
		})
	}
	// help COMMAND is COMMAND -h.
	res := runBinary(t, offline, "help", "persist")
	if res.code != 0 || res.stderr != "" || !strings.HasPrefix(res.stdout, "usage: eventsource persist ") {
		t.Errorf("help persist: exit status %d, stdout %q, stderr %q; want 0, the usage of persist, nothing", res.code, res.stdout, res.stderr)
	}
}
