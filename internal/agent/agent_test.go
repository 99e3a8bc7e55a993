package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestVersionReadsOSBuild(t *testing.T) {
	sys := newFakeSystem(t)
	sys.reg.set(KeyCurrentVersion, "ProductName", "Windows Server 2022 Standard")
	sys.reg.set(KeyCurrentVersion, "EditionID", "ServerStandard")
	sys.reg.set(KeyCurrentVersion, "InstallationType", "Server Core")
	sys.reg.set(KeyCurrentVersion, "CurrentBuild", "20348")
	sys.reg.set(KeyCurrentVersion, "DisplayVersion", "21H2")
	sys.reg.set(KeyCurrentVersion, "SystemRoot", `C:\Windows`)
	sys.reg.set(KeyCurrentVersion, "UBR", uint32(2340))

	var doc VersionResult
	code, _ := run(t, sys, &doc, "version")
	if code != ExitOK || !doc.OK || doc.Verb != "version" || doc.Protocol != Protocol || doc.Error != "" {
		t.Fatalf("code %d, doc %+v", code, doc)
	}
	if doc.AgentVersion == "" || doc.AgentVersion != Version() {
		t.Errorf("agent_version %q, want %q", doc.AgentVersion, Version())
	}
	want := OSInfo{
		ProductName: "Windows Server 2022 Standard", EditionID: "ServerStandard",
		InstallationType: "Server Core", DisplayVersion: "21H2", CurrentBuild: "20348",
		Build: "20348.2340", SystemRoot: `C:\Windows`,
	}
	if doc.OS == nil || doc.OS.UBR == nil || *doc.OS.UBR != 2340 {
		t.Fatalf("os %+v", doc.OS)
	}
	got := *doc.OS
	got.UBR = nil
	if got != want {
		t.Errorf("os\n got  %+v\n want %+v", got, want)
	}
}

func TestVersionWithoutRegistryInformation(t *testing.T) {
	t.Run("no key", func(t *testing.T) {
		sys := newFakeSystem(t)
		var doc VersionResult
		code, _ := run(t, sys, &doc, "version")
		if code != ExitOK || !doc.OK || doc.OS != nil || len(doc.Warnings) != 0 {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
	t.Run("build without UBR", func(t *testing.T) {
		sys := newFakeSystem(t)
		sys.reg.set(KeyCurrentVersion, "CurrentBuild", "17763")
		var doc VersionResult
		run(t, sys, &doc, "version")
		if doc.OS == nil || doc.OS.Build != "17763" || doc.OS.UBR != nil {
			t.Errorf("os %+v", doc.OS)
		}
	})
	t.Run("registry error is a warning", func(t *testing.T) {
		sys := newFakeSystem(t)
		sys.reg.err = errors.New("access denied")
		var doc VersionResult
		code, _ := run(t, sys, &doc, "version")
		if code != ExitOK || !doc.OK || len(doc.Warnings) != 1 || !strings.Contains(doc.Warnings[0], "access denied") {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
	t.Run("wrongly typed value is a warning", func(t *testing.T) {
		sys := newFakeSystem(t)
		sys.reg.set(KeyCurrentVersion, "CurrentBuild", "20348")
		sys.reg.set(KeyCurrentVersion, "UBR", "2340") // REG_SZ instead of REG_DWORD
		var doc VersionResult
		code, _ := run(t, sys, &doc, "version")
		if code != ExitOK || doc.OS == nil || doc.OS.Build != "20348" || len(doc.Warnings) != 1 || !strings.Contains(doc.Warnings[0], "UBR") {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
}

func TestBootTime(t *testing.T) {
	sys := newFakeSystem(t)
	var doc BootTimeResult
	code, _ := run(t, sys, &doc, "boot-time")
	if code != ExitOK || !doc.OK {
		t.Fatalf("code %d, doc %+v", code, doc)
	}
	if !doc.BootTime.Equal(sys.power.boot) || doc.BootTime.Location() != time.UTC {
		t.Errorf("boot_time %v, want %v in UTC", doc.BootTime, sys.power.boot)
	}
	raw := rawDoc(t, sys, "boot-time")
	if raw["boot_time"] != "2025-03-04T04:06:07.89Z" {
		t.Errorf("boot_time in JSON is %v, want RFC 3339 UTC 2025-03-04T04:06:07.89Z", raw["boot_time"])
	}

	sys.power.bootErr = errors.New("NtQuerySystemInformation failed")
	doc = BootTimeResult{}
	code, _ = run(t, sys, &doc, "boot-time")
	if code != ExitFailed || doc.OK || !strings.Contains(doc.Error, "NtQuerySystemInformation failed") || !doc.BootTime.IsZero() {
		t.Errorf("code %d, doc %+v", code, doc)
	}
	if _, ok := rawDoc(t, sys, "boot-time")["boot_time"]; ok {
		t.Error("boot_time present in a failed document")
	}
}

func TestPendingReboot(t *testing.T) {
	for _, tc := range []struct {
		name        string
		setup       func(*fakeRegistry)
		reasons     []string
		softReasons []string
	}{
		{name: "clean", setup: func(r *fakeRegistry) {
			r.addKey(keyCBS)
			r.addKey(KeyCBSPackagesPending) // present but empty: not pending
			r.addKey(KeyWUServicesPending)
			r.set(KeySessionManager, "BootExecute", "autocheck autochk *")
			r.set(KeyActiveComputerName, "ComputerName", "WIN-BUILD")
			r.set(KeyComputerName, "ComputerName", "win-build")
		}},
		{name: "CBS RebootPending", setup: func(r *fakeRegistry) { r.addKey(KeyCBSRebootPending) },
			reasons: []string{ReasonCBSRebootPending}},
		{name: "CBS RebootInProgress", setup: func(r *fakeRegistry) { r.addKey(KeyCBSRebootInProgress) },
			reasons: []string{ReasonCBSRebootInProgress}},
		{name: "CBS PackagesPending with a subkey", setup: func(r *fakeRegistry) {
			r.addKey(KeyCBSPackagesPending + `\Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.2340.1.10`)
		}, reasons: []string{ReasonCBSPackagesPending}},
		{name: "WU RebootRequired", setup: func(r *fakeRegistry) { r.addKey(KeyWURebootRequired) },
			reasons: []string{ReasonWURebootRequired}},
		{name: "weak signals only", setup: func(r *fakeRegistry) {
			r.addKey(KeyWUServicesPending + `\117cab2d-82b1-4b5a-a08c-4d62dbee7782`)
			r.set(KeySessionManager, "PendingFileRenameOperations", `\??\C:\Windows\Temp\x`)
			r.set(KeyActiveComputerName, "ComputerName", "WIN-ABC")
			r.set(KeyComputerName, "ComputerName", "BUILD01")
		}, softReasons: []string{SoftWUServicesPending, SoftPendingFileRename, SoftComputerRename}},
		{name: "PendingFileRenameOperations2", setup: func(r *fakeRegistry) {
			r.set(KeySessionManager, "PendingFileRenameOperations2", `\??\C:\x`)
		}, softReasons: []string{SoftPendingFileRename}},
		{name: "everything", setup: func(r *fakeRegistry) {
			r.addKey(KeyCBSRebootPending)
			r.addKey(KeyCBSRebootInProgress)
			r.addKey(KeyCBSPackagesPending + `\p`)
			r.addKey(KeyWURebootRequired)
			r.addKey(KeyWUServicesPending + `\s`)
			r.set(KeySessionManager, "PendingFileRenameOperations", "x")
		}, reasons: []string{ReasonCBSRebootPending, ReasonCBSRebootInProgress, ReasonCBSPackagesPending, ReasonWURebootRequired},
			softReasons: []string{SoftWUServicesPending, SoftPendingFileRename}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := newFakeSystem(t)
			tc.setup(sys.reg)
			var doc PendingRebootResult
			code, _ := run(t, sys, &doc, "pending-reboot")
			if code != ExitOK || !doc.OK {
				t.Fatalf("code %d, doc %+v", code, doc)
			}
			want := PendingReboot{Pending: len(tc.reasons) > 0, Reasons: nonNil(tc.reasons), SoftReasons: nonNil(tc.softReasons)}
			if doc.Pending != want.Pending || !slices.Equal(doc.Reasons, want.Reasons) || !slices.Equal(doc.SoftReasons, want.SoftReasons) {
				t.Errorf("got %+v, want %+v", doc.PendingReboot, want)
			}
			raw := rawDoc(t, sys, "pending-reboot")
			for _, k := range []string{"pending", "reasons", "soft_reasons"} {
				if v, ok := raw[k]; !ok || v == nil {
					t.Errorf("%q missing or null in %v", k, raw)
				}
			}
		})
	}

	// TiWorker.exe running is servicing still at work, not a reason to
	// reboot.
	t.Run("servicing worker running", func(t *testing.T) {
		sys := newFakeSystem(t)
		sys.procs.running = map[string]bool{"tiworker.exe": true}
		var doc PendingRebootResult
		if code, _ := run(t, sys, &doc, "pending-reboot"); code != ExitOK || !doc.OK {
			t.Fatalf("code %d, doc %+v", code, doc)
		}
		if !doc.ServicingBusy || doc.Pending {
			t.Errorf("got %+v, want servicing busy and nothing pending", doc.PendingReboot)
		}
		sys.procs.running = nil
		if raw := rawDoc(t, sys, "pending-reboot"); raw["servicing_busy"] != false {
			t.Errorf("servicing_busy %v without a worker, want false", raw["servicing_busy"])
		}
	})

	t.Run("registry error fails the check", func(t *testing.T) {
		sys := newFakeSystem(t)
		sys.reg.err = errors.New("RPC server unavailable")
		sys.reg.errKey = KeyCBSPackagesPending
		var doc PendingRebootResult
		code, _ := run(t, sys, &doc, "pending-reboot")
		if code != ExitFailed || doc.OK || !strings.Contains(doc.Error, "RPC server unavailable") || doc.Pending {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestRestart(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		restart string
		delay   int64
		reason  string
	}{
		{nil, "0s winbake restart", 0, "winbake restart"},
		{[]string{"--delay", "0s"}, "0s winbake restart", 0, "winbake restart"},
		{[]string{"--delay=30s", "--reason", "winbake: KB5005565"}, "30s winbake: KB5005565", 30, "winbake: KB5005565"},
		{[]string{"--reason", "after updates", "--delay", "45"}, "45s after updates", 45, "after updates"},
		{[]string{"--delay", "2m"}, "2m0s winbake restart", 120, "winbake restart"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			sys := newFakeSystem(t)
			var doc RestartResult
			code, stderr := run(t, sys, &doc, append([]string{"restart"}, tc.args...)...)
			if code != ExitOK || !doc.OK || doc.AlreadyShuttingDown {
				t.Fatalf("code %d, doc %+v", code, doc)
			}
			if !slices.Equal(sys.power.restarts, []string{tc.restart}) {
				t.Errorf("restarts %q, want %q", sys.power.restarts, tc.restart)
			}
			if doc.DelaySeconds != tc.delay || doc.Reason != tc.reason || !doc.BootTime.Equal(sys.power.boot) || doc.BootTime.Location() != time.UTC {
				t.Errorf("doc %+v", doc)
			}
			if !strings.Contains(stderr, "restarting") {
				t.Errorf("no progress on stderr: %q", stderr)
			}
		})
	}

	t.Run("shutdown already in progress", func(t *testing.T) {
		sys := newFakeSystem(t)
		sys.power.restartErr = errors.Join(errors.New("shutdown.exe exit 1190"), ErrShutdownInProgress)
		var doc RestartResult
		code, _ := run(t, sys, &doc, "restart")
		if code != ExitOK || !doc.OK || !doc.AlreadyShuttingDown || len(doc.Warnings) != 1 {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
	t.Run("restart refused", func(t *testing.T) {
		sys := newFakeSystem(t)
		sys.power.restartErr = errors.New("shutdown.exe exit 5: access denied")
		var doc RestartResult
		code, _ := run(t, sys, &doc, "restart")
		if code != ExitFailed || doc.OK || !strings.Contains(doc.Error, "access denied") || doc.AlreadyShuttingDown {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
	t.Run("no boot time, no restart", func(t *testing.T) {
		sys := newFakeSystem(t)
		sys.power.bootErr = errors.New("no clock")
		var doc RestartResult
		code, _ := run(t, sys, &doc, "restart")
		if code != ExitFailed || doc.OK || len(sys.power.restarts) != 0 || !strings.Contains(doc.Error, "not restarting") {
			t.Errorf("code %d, doc %+v, restarts %q", code, doc, sys.power.restarts)
		}
	})
	for _, args := range [][]string{
		{"--delay", "-5s"}, {"--delay", "1.5s"}, {"--delay", "soon"}, {"--delay", "-1"},
		{"--delay", "315360001"}, {"--delay", "87600h1s"},
		{"--reason", " "}, {"--reason", strings.Repeat("x", MaxReasonLength+1)},
	} {
		t.Run("bad "+strings.Join(args, " "), func(t *testing.T) {
			sys := newFakeSystem(t)
			var doc UsageResult
			code, _ := run(t, sys, &doc, append([]string{"restart"}, args...)...)
			if code != ExitUsage || doc.OK || !doc.UsageError || doc.Verb != "restart" || len(sys.power.restarts) != 0 {
				t.Errorf("code %d, doc %+v", code, doc)
			}
		})
	}
}

func TestTail(t *testing.T) {
	const log = `C:\Windows\Logs\winbake\x.dism.log`
	content := []byte("2025-03-04 05:06:07, Info  DISM   PID=1 TID=2 Scratch directory set\r\n\xff\xfe binary is fine\r\n")

	sys := newFakeSystem(t)
	sys.files.put(log, content)
	tail := func(args ...string) (uint32, TailResult) {
		var doc TailResult
		code, _ := run(t, sys, &doc, append([]string{"tail", log}, args...)...)
		return code, doc
	}

	code, doc := tail()
	if code != ExitOK || !doc.OK || !doc.Exists || doc.From != 0 || doc.NextOffset != int64(len(content)) ||
		doc.Size != int64(len(content)) || !doc.EOF || doc.Reset || !bytes.Equal(doc.Data, content) {
		t.Fatalf("whole file: code %d, doc %+v", code, doc)
	}

	// Streaming in small pieces reassembles the file exactly.
	var got []byte
	offset := int64(0)
	for range 100 {
		code, doc = tail("--from", itoa(offset), "--max=7")
		if code != ExitOK || doc.From != offset {
			t.Fatalf("piece at %d: code %d, doc %+v", offset, code, doc)
		}
		got = append(got, doc.Data...)
		offset = doc.NextOffset
		if doc.EOF {
			break
		}
		if len(doc.Data) != 7 {
			t.Fatalf("short piece before EOF: %+v", doc)
		}
	}
	if !bytes.Equal(got, content) {
		t.Errorf("streamed %q, want %q", got, content)
	}

	// The log grows; the next call returns only the new bytes.
	sys.files.put(log, append(slices.Clone(content), "more\r\n"...))
	code, doc = tail("--from", itoa(offset))
	if code != ExitOK || string(doc.Data) != "more\r\n" || doc.NextOffset != offset+6 || !doc.EOF {
		t.Errorf("after growth: code %d, doc %+v", code, doc)
	}

	// At the end: nothing new, same offset.
	code, doc = tail("--from", itoa(offset+6))
	if code != ExitOK || len(doc.Data) != 0 || doc.NextOffset != offset+6 || !doc.EOF || doc.Data == nil {
		t.Errorf("at end: code %d, doc %+v", code, doc)
	}

	// Truncated or replaced: read again from 0.
	sys.files.put(log, []byte("new log\n"))
	code, doc = tail("--from", itoa(offset))
	if code != ExitOK || !doc.Reset || doc.From != 0 || string(doc.Data) != "new log\n" || doc.NextOffset != 8 {
		t.Errorf("after truncation: code %d, doc %+v", code, doc)
	}

	// data is base64 in the JSON.
	raw := rawDoc(t, sys, "tail", log)
	if raw["data"] != "bmV3IGxvZwo=" {
		t.Errorf("data in JSON is %v", raw["data"])
	}

	t.Run("missing file", func(t *testing.T) {
		var doc TailResult
		code, _ := run(t, sys, &doc, "tail", `C:\nowhere.log`, "--from", "42")
		if code != ExitOK || !doc.OK || doc.Exists || doc.NextOffset != 42 || len(doc.Data) != 0 {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
	t.Run("directory", func(t *testing.T) {
		var doc TailResult
		code, _ := run(t, sys, &doc, "tail", `C:\Windows\Logs`)
		if code != ExitFailed || doc.OK || !strings.Contains(doc.Error, "directory") {
			t.Errorf("code %d, doc %+v", code, doc)
		}
	})
	for _, args := range [][]string{{"--from", "-1"}, {"--from", "x"}, {"--max", "0"}, {"--max", itoa(MaxTailMax + 1)}} {
		t.Run("bad "+strings.Join(args, " "), func(t *testing.T) {
			var doc UsageResult
			code, _ := run(t, sys, &doc, append([]string{"tail", log}, args...)...)
			if code != ExitUsage || !doc.UsageError || !slices.Equal(doc.AcceptedFlags, []string{"--from", "--max"}) {
				t.Errorf("code %d, doc %+v", code, doc)
			}
		})
	}
}

func itoa(n int64) string { return strings.TrimSpace(string(must(json.Marshal(n)))) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestUsageErrors(t *testing.T) {
	allVerbs := []string{"version", "boot-time", "pending-reboot", "install", "fetch", "append-line", "winrm-client", "remove", "restart", "tail"}
	for _, tc := range []struct {
		name      string
		args      []string
		verb      string
		errSubstr []string
		verbs     bool
		flags     []string
	}{
		{name: "no verb", args: nil, verb: "", errSubstr: []string{"no verb"}, verbs: true},
		{name: "unknown verb", args: []string{"reboot"}, verb: "reboot",
			errSubstr: []string{`unknown verb "reboot"`, "version, boot-time, pending-reboot, install, fetch, append-line, winrm-client, remove, restart, tail"}, verbs: true},
		{name: "unknown flag", args: []string{"install", `C:\u\x.cab`, "--logfile", "x"}, verb: "install",
			errSubstr: []string{`unknown flag "--logfile"`, "--log, --temp, --journal, --stale-after"}, flags: []string{"--log", "--temp", "--journal", "--stale-after"}},
		{name: "single-dash flag", args: []string{"tail", `C:\x.log`, "-from", "3"}, verb: "tail",
			errSubstr: []string{`unknown flag "-from"`}, flags: []string{"--from", "--max"}},
		{name: "flag on a verb without flags", args: []string{"version", "--verbose"}, verb: "version",
			errSubstr: []string{`unknown flag "--verbose"; accepted flags: none`}},
		{name: "flag without value", args: []string{"install", `C:\u\x.cab`, "--log"}, verb: "install",
			errSubstr: []string{"--log needs a value"}, flags: []string{"--log", "--temp", "--journal", "--stale-after"}},
		{name: "flag twice", args: []string{"restart", "--delay", "1s", "--delay=2s"}, verb: "restart",
			errSubstr: []string{"--delay given twice"}, flags: []string{"--delay", "--reason"}},
		{name: "empty log", args: []string{"install", `C:\u\x.cab`, "--log="}, verb: "install",
			errSubstr: []string{"--log needs a non-empty value"}, flags: []string{"--log", "--temp", "--journal", "--stale-after"}},
		{name: "missing argument", args: []string{"install"}, verb: "install", errSubstr: []string{"missing argument", "install <"}},
		{name: "extra argument", args: []string{"tail", "a", "b"}, verb: "tail", errSubstr: []string{`unexpected argument "b"`}},
		{name: "argument to a verb without arguments", args: []string{"boot-time", "now"}, verb: "boot-time", errSubstr: []string{`unexpected argument "now"`}},
		{name: "not a package", args: []string{"install", `C:\u\x.exe`}, verb: "install", errSubstr: []string{"neither a .cab nor an .msu"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := newFakeSystem(t) // any program run fails the test
			var doc UsageResult
			code, stderr := run(t, sys, &doc, tc.args...)
			if code != ExitUsage || doc.OK || !doc.UsageError || doc.Verb != tc.verb || doc.Usage == "" || doc.Protocol != Protocol {
				t.Errorf("code %d, doc %+v", code, doc)
			}
			if !strings.Contains(stderr, "winbake-agent: error: "+doc.Error) || !strings.Contains(stderr, "usage:\n  winbake-agent ") {
				t.Errorf("stderr %q", stderr)
			}
			for _, s := range tc.errSubstr {
				if !strings.Contains(doc.Error, s) {
					t.Errorf("error %q does not contain %q", doc.Error, s)
				}
			}
			if tc.verbs != (doc.AcceptedVerbs != nil) || tc.verbs && !slices.Equal(doc.AcceptedVerbs, allVerbs) {
				t.Errorf("accepted_verbs %q", doc.AcceptedVerbs)
			}
			if !slices.Equal(doc.AcceptedFlags, tc.flags) || (tc.flags == nil) != (doc.AcceptedFlags == nil) {
				t.Errorf("accepted_flags %q, want %q", doc.AcceptedFlags, tc.flags)
			}
			if tc.verb != "" && tc.verbs == false && !strings.HasPrefix(doc.Error, tc.verb+": ") {
				t.Errorf("error %q does not name the verb", doc.Error)
			}
		})
	}
	if !slices.Equal(Verbs(), allVerbs) {
		t.Errorf("Verbs() = %q", Verbs())
	}
}

func TestFlagForms(t *testing.T) {
	// "--" ends the flags: a file whose name starts with "--".
	sys := newFakeSystem(t)
	sys.files.put(`--odd.log`, []byte("abc"))
	var doc TailResult
	code, _ := run(t, sys, &doc, "tail", "--from=1", "--", "--odd.log")
	if code != ExitOK || doc.Path != "--odd.log" || string(doc.Data) != "bc" {
		t.Errorf("code %d, doc %+v", code, doc)
	}
}

// panicSystem panics on any use.
type panicSystem struct{ System }

func (panicSystem) Power() Power { panic("simulated bug") }

func TestPanicBecomesInternalError(t *testing.T) {
	var doc Header
	code, stderr := run(t, panicSystem{}, &doc, "boot-time")
	if code != ExitInternal || doc.OK || doc.Verb != "boot-time" || !strings.Contains(doc.Error, "simulated bug") {
		t.Errorf("code %d, doc %+v", code, doc)
	}
	if !strings.Contains(stderr, "simulated bug") {
		t.Errorf("stderr %q", stderr)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("pipe closed") }

func TestStdoutFailure(t *testing.T) {
	var stderr bytes.Buffer
	code := Main(context.Background(), newFakeSystem(t), []string{"boot-time"}, nil, failingWriter{}, &stderr)
	if code != ExitInternal || !strings.Contains(stderr.String(), "pipe closed") {
		t.Errorf("code %d, stderr %q", code, stderr.String())
	}
}

func TestUnsupported(t *testing.T) {
	var out, errb bytes.Buffer
	code := Unsupported([]string{"version"}, &out, &errb, errors.New("winbake-agent runs only on Windows"))
	var doc Header
	decodeOne(t, out.Bytes(), &doc)
	if code != ExitUnsupported || doc.OK || doc.Verb != "version" || doc.Error != "winbake-agent runs only on Windows" ||
		!strings.Contains(errb.String(), "only on Windows") {
		t.Errorf("code %d, doc %+v, stderr %q", code, doc, errb.String())
	}
}

// TestDocumentShape checks the top-level JSON fields every document has.
func TestDocumentShape(t *testing.T) {
	sys := newFakeSystem(t)
	sys.files.put(`C:\x.log`, []byte("x"))
	for _, args := range [][]string{{"version"}, {"boot-time"}, {"pending-reboot"}, {"tail", `C:\x.log`}, {"restart"}, {"frobnicate"}, {}} {
		raw := rawDoc(t, sys, args...)
		for _, k := range []string{"verb", "ok", "protocol"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("%q: no %q in %v", args, k, raw)
			}
		}
		if raw["ok"] == false {
			if e, _ := raw["error"].(string); e == "" {
				t.Errorf("%q: failed without an error: %v", args, raw)
			}
		} else if _, ok := raw["error"]; ok {
			t.Errorf("%q: error in a successful document: %v", args, raw)
		}
	}
}

// rawDoc runs Main and returns its document as a generic JSON object.
func rawDoc(t *testing.T, sys System, args ...string) map[string]any {
	t.Helper()
	var out bytes.Buffer
	Main(context.Background(), sys, args, nil, &out, &bytes.Buffer{})
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("%q: %v: %s", args, err, out.Bytes())
	}
	return m
}

func TestNetstatClients(t *testing.T) {
	out := "\r\nActive Connections\r\n\r\n  Proto  Local Address          Foreign Address        State\r\n" +
		"  TCP    10.0.2.15:5985         10.0.2.2:50001         ESTABLISHED\r\n" +
		"  TCP    10.0.2.15:5985         192.168.1.9:50002      ESTABLISHED\r\n" +
		"  TCP    10.0.2.15:5985         10.0.2.2:50003         ESTABLISHED\r\n" +
		"  TCP    10.0.2.15:5985         10.0.2.7:50004         TIME_WAIT\r\n" +
		"  TCP    10.0.2.15:49700        10.0.2.2:5985          ESTABLISHED\r\n"
	if got := netstatClients(out, 5985); !slices.Equal(got, []string{"10.0.2.2", "192.168.1.9"}) {
		t.Errorf("clients %v", got)
	}
	if got := netstatClients(out, 5986); len(got) != 0 || got == nil {
		t.Errorf("clients on 5986 %#v, want empty", got)
	}
}
