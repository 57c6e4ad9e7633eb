// Command eventsource is the event store server and its tools: serve,
// migrate, fetch, persist and sql, one subcommand per file.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
)

// command is one subcommand: it parses its own flags from args and writes
// data to stdout and diagnostics to stderr.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// hidden leaves the command out of the list of commands: it is the
	// program's own business (bench runs bench-pool), not the user's.
	hidden bool
}

var commands = map[string]command{}

// register is called from each subcommand's file.
func register(name, summary string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	commands[name] = command{summary: summary, run: run}
}

// registerInternal registers a command the program runs itself, which the
// list of commands leaves out.
func registerInternal(name, summary string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	commands[name] = command{summary: summary, run: run, hidden: true}
}

// errUsage marks a misuse; main exits 2 for it, as flag does.
var errUsage = errors.New("usage")

// helpError is what a command returns for -h or --help: the usage, which
// run prints to stdout, and exit status 0. Asking for help is no misuse.
type helpError struct{ usage []byte }

func (e *helpError) Error() string { return "help requested" }

// Is lets callers test for flag.ErrHelp.
func (e *helpError) Is(target error) bool { return target == flag.ErrHelp }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "eventsource:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return nil
	case "help":
		// help [COMMAND]: the list, or the command's flags.
		if len(args) == 1 {
			usage(stdout)
			return nil
		}
		args = []string{args[1], "-h"}
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "eventsource: unknown command %q\n\n", args[0])
		usage(stderr)
		return errUsage
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	if h, ok := errors.AsType[*helpError](err); ok {
		_, werr := stdout.Write(h.usage)
		return werr
	}
	return err
}

// usage lists the commands, internal ones left out, in aligned columns.
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: eventsource <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for name, cmd := range commands {
		if !cmd.hidden {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, name := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", name, commands[name].summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun 'eventsource <command> -h' for the flags of a command.")
}

// newFlagSet returns a flag set that reports errors instead of exiting, and
// prints its usage to stderr (to stdout for -h: see parseFlags).
func newFlagSet(name, usageLine string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		line := strings.TrimSpace("eventsource " + name + " " + usageLine)
		fmt.Fprintf(w, "usage: %s\n", line)
		flags := 0
		fs.VisitAll(func(*flag.Flag) { flags++ })
		if flags > 0 {
			fmt.Fprint(w, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args and turns a parse error into errUsage (flag has
// already printed it with the usage), and -h or --help into a *helpError
// that carries the usage for stdout.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseOnly(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "eventsource %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return fmt.Errorf("%s: %w", fs.Name(), errUsage)
	}
	return nil
}

// parseOnly is parseFlags that leaves arguments after the flags to the
// caller (actors stop NAME, consumers reset NAME).
func parseOnly(fs *flag.FlagSet, args []string) error {
	// What flag prints while parsing is held back: the usage answers -h
	// on stdout, and follows a parse error on stderr.
	out := fs.Output()
	var held bytes.Buffer
	fs.SetOutput(&held)
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return &helpError{usage: held.Bytes()}
	case err != nil:
		_, _ = out.Write(held.Bytes())
		return fmt.Errorf("%s: %w", fs.Name(), errUsage)
	}
	return nil
}
