package winsim

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/winbake/packer-plugin-winbake/internal/testing/testguest/wsman"
)

func TestOutputOrder(t *testing.T) {
	o := newOutput()
	out, errw := o.writer(wsman.StreamStdout), o.writer(wsman.StreamStderr)
	_, _ = out.Write([]byte("a"))
	_, _ = out.Write([]byte("b"))
	_, _ = errw.Write([]byte("E"))
	_, _ = out.Write([]byte("c"))
	o.Close()
	if _, err := out.Write([]byte("late")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write after Close: %v", err)
	}
	var got []string
	buf := make([]byte, 64)
	for {
		st, n, err := o.ReadOutput(buf)
		if err == io.EOF {
			break
		}
		got = append(got, []string{"out", "err"}[st]+":"+string(buf[:n]))
	}
	if strings.Join(got, "|") != "out:ab|err:E|out:c" {
		t.Errorf("ReadOutput: %q", got)
	}

	// Per-stream readers take their stream's chunks only.
	o = newOutput()
	_, _ = o.writer(wsman.StreamStdout).Write([]byte("1"))
	_, _ = o.writer(wsman.StreamStderr).Write([]byte("2"))
	_, _ = o.writer(wsman.StreamStdout).Write([]byte("3"))
	o.Close()
	stdout, _ := io.ReadAll(o.reader(wsman.StreamStdout))
	stderr, _ := io.ReadAll(o.reader(wsman.StreamStderr))
	if string(stdout) != "13" || string(stderr) != "2" {
		t.Errorf("readers: %q %q", stdout, stderr)
	}
}

// A process's output, read as wsman reads it, comes in the order the
// program wrote it.
func TestProcessOutputInProductionOrder(t *testing.T) {
	m := newMachine(t, Options{})
	for i := 0; i < 20; i++ {
		p, err := m.Start(context.Background(), wsman.CommandRequest{Command: "echo out && echo err>&2 && echo more", User: "vagrant"})
		if err != nil {
			t.Fatal(err)
		}
		oo, ok := p.(wsman.OrderedOutput)
		if !ok {
			t.Fatal("the process has no OrderedOutput")
		}
		var got []string
		buf := make([]byte, 256)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			st, n, err := oo.ReadOutput(buf)
			if err != nil {
				break
			}
			s := []string{"out", "err"}[st] + ":" + string(buf[:n])
			if k := len(got); k > 0 && strings.HasPrefix(got[k-1], s[:4]) {
				got[k-1] += string(buf[:n])
				continue
			}
			got = append(got, s)
		}
		if p.Wait() != 0 || strings.Join(got, "|") != "out:out \r\n|err:err \r\n|out:more\r\n" {
			t.Fatalf("run %d: %q", i, got)
		}
	}
}
