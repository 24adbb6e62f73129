package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Helpers that build one operation on key "k" (client, invoke, return).
func put(c int, v string, inv, ret int64) HistoryOp {
	return HistoryOp{Client: c, Key: "k", Op: "put", Value: v, Ok: true, InvokeNs: inv, ReturnNs: ret}
}

func read(c int, r string, inv, ret int64) HistoryOp {
	return HistoryOp{Client: c, Key: "k", Op: "read", Result: r, InvokeNs: inv, ReturnNs: ret}
}

func cas(c int, expected, v string, ok bool, inv, ret int64) HistoryOp {
	return HistoryOp{Client: c, Key: "k", Op: "cas", Expected: expected, Value: v, Ok: ok, InvokeNs: inv, ReturnNs: ret}
}

func unknown(op HistoryOp) HistoryOp {
	op.Unknown = true
	op.Ok = false
	return op
}

func onKey(key string, op HistoryOp) HistoryOp {
	op.Key = key
	return op
}

// check runs the checker on ops, with HTML going to a fresh directory.
func check(t *testing.T, ops ...HistoryOp) Summary {
	t.Helper()
	dir := t.TempDir()
	var log bytes.Buffer
	s, err := Check(History{Ops: ops}, dir, 10*time.Second, &log)
	if err != nil {
		t.Fatalf("Check: %v (log: %s)", err, log.String())
	}
	for _, f := range s.HTMLFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("visualisation %s: %v", f, err)
		}
		if !bytes.Contains(b, []byte("<html")) {
			t.Fatalf("visualisation %s is not HTML", f)
		}
		if !strings.Contains(log.String(), f) {
			t.Fatalf("visualisation %s not named in the log: %s", f, log.String())
		}
	}
	return s
}

func expect(t *testing.T, want bool, ops ...HistoryOp) Summary {
	t.Helper()
	s := check(t, ops...)
	if s.Linearizable != want {
		t.Fatalf("linearizable = %v, want %v (summary %+v)", s.Linearizable, want, s)
	}
	if want && (len(s.BadKeys) != 0 || len(s.HTMLFiles) != 0) {
		t.Fatalf("linearizable history with bad keys or files: %+v", s)
	}
	if !want && len(s.HTMLFiles) != len(s.BadKeys) {
		t.Fatalf("want one visualisation per bad key: %+v", s)
	}
	return s
}

func TestEmptyHistoryIsLinearizable(t *testing.T) {
	s := expect(t, true)
	if s.Ops != 0 || s.Keys != 0 {
		t.Fatalf("summary %+v", s)
	}
}

func TestOverlappingPutAndReadsAreLinearizable(t *testing.T) {
	// A read concurrent with a put may see the old or the new value.
	expect(t, true,
		put(0, "a", 0, 100),
		read(1, "", 10, 20),  // before the put took effect
		read(2, "a", 30, 40), // after
		put(0, "b", 110, 200),
		read(1, "a", 120, 130),
		read(2, "b", 150, 250),
		read(1, "b", 210, 220),
	)
}

func TestStaleReadIsNotLinearizable(t *testing.T) {
	// "a" was overwritten by "b" before the read was invoked.
	s := expect(t, false,
		put(0, "a", 0, 10),
		put(1, "b", 20, 30),
		read(2, "a", 40, 50),
	)
	if len(s.BadKeys) != 1 || s.BadKeys[0] != "k" {
		t.Fatalf("badKeys %v", s.BadKeys)
	}
	if filepath.Base(s.HTMLFiles[0]) != "linearizability-k.html" {
		t.Fatalf("htmlFiles %v", s.HTMLFiles)
	}
}

func TestReadsMustNotGoBackInTime(t *testing.T) {
	// Both reads overlap the put, but once one saw "b" a later read cannot see "a" again.
	expect(t, false,
		put(0, "a", 0, 10),
		put(1, "b", 20, 100),
		read(2, "b", 30, 40),
		read(3, "a", 50, 60),
	)
}

func TestReadOfNeverWrittenValueIsNotLinearizable(t *testing.T) {
	expect(t, false, put(0, "a", 0, 10), read(1, "zzz", 20, 30))
}

func TestCas(t *testing.T) {
	cases := []struct {
		name string
		want bool
		ops  []HistoryOp
	}{
		{"true on the current value", true, []HistoryOp{
			put(0, "a", 0, 10), cas(1, "a", "b", true, 20, 30), read(2, "b", 40, 50)}},
		{"true on a stale value", false, []HistoryOp{
			put(0, "a", 0, 10), put(1, "b", 20, 30), cas(2, "a", "c", true, 40, 50)}},
		{"false on a stale value", true, []HistoryOp{
			put(0, "a", 0, 10), put(1, "b", 20, 30), cas(2, "a", "c", false, 40, 50), read(0, "b", 60, 70)}},
		{"false on the current value", false, []HistoryOp{
			put(0, "a", 0, 10), cas(1, "a", "c", false, 20, 30)}},
		{"false, with a concurrent write that changed the value", true, []HistoryOp{
			put(0, "a", 0, 10), cas(1, "a", "c", false, 20, 40), put(2, "b", 25, 35)}},
		{"true on an absent key (cas=0)", true, []HistoryOp{
			cas(0, "", "a", true, 0, 10), read(1, "a", 20, 30)}},
		{"false on an absent key", false, []HistoryOp{
			cas(0, "", "a", false, 0, 10)}},
		{"false on an existing key expected absent", true, []HistoryOp{
			put(0, "a", 0, 10), cas(1, "", "b", false, 20, 30)}},
		{"a false CAS writes nothing", false, []HistoryOp{
			put(0, "a", 0, 10), put(1, "b", 20, 30), cas(2, "a", "c", false, 40, 50), read(0, "c", 60, 70)}},
		{"two CAS from the same value cannot both succeed", false, []HistoryOp{
			put(0, "a", 0, 10), cas(1, "a", "b", true, 20, 40), cas(2, "a", "c", true, 20, 40)}},
		{"two concurrent CAS from the same value, one wins", true, []HistoryOp{
			put(0, "a", 0, 10), cas(1, "a", "b", true, 20, 40), cas(2, "a", "c", false, 20, 40),
			read(0, "b", 50, 60)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { expect(t, c.want, c.ops...) })
	}
}

func TestUnknownPut(t *testing.T) {
	// The put of "b" timed out (its returnNs is when the client gave up): it may take effect at any
	// time after its invocation, or never.
	timedOut := unknown(put(1, "b", 20, 30))
	t.Run("seen later", func(t *testing.T) {
		s := expect(t, true, put(0, "a", 0, 10), timedOut, read(2, "a", 100, 110), read(2, "b", 200, 210))
		if s.UnknownOps != 1 {
			t.Fatalf("unknownOps %d", s.UnknownOps)
		}
	})
	t.Run("never seen", func(t *testing.T) {
		expect(t, true, put(0, "a", 0, 10), timedOut, read(2, "a", 100, 110))
	})
	t.Run("seen, then the old value again", func(t *testing.T) {
		expect(t, false, put(0, "a", 0, 10), timedOut, read(2, "b", 100, 110), read(2, "a", 200, 210))
	})
	t.Run("seen before it was invoked", func(t *testing.T) {
		expect(t, false, put(0, "a", 0, 10), read(2, "b", 11, 15), timedOut)
	})
	t.Run("as a known put it would be illegal", func(t *testing.T) {
		known := timedOut
		known.Unknown, known.Ok = false, true
		expect(t, false, put(0, "a", 0, 10), known, read(2, "a", 100, 110))
	})
}

func TestUnknownCas(t *testing.T) {
	timedOut := unknown(cas(1, "a", "b", true, 20, 30))
	expect(t, true, put(0, "a", 0, 10), timedOut, read(2, "a", 100, 110), read(2, "b", 200, 210))
	expect(t, true, put(0, "a", 0, 10), timedOut, read(2, "a", 100, 110))
	// It can only take effect while the key holds "a".
	expect(t, false, put(0, "a", 0, 10), timedOut, put(0, "c", 40, 50), read(2, "b", 100, 110))
}

func TestUnknownReadsAreIgnored(t *testing.T) {
	s := expect(t, true, put(0, "a", 0, 10), unknown(read(1, "nonsense", 20, 30)))
	if s.UnknownOps != 1 || s.Ops != 2 || s.Keys != 1 {
		t.Fatalf("summary %+v", s)
	}
}

func TestKeysAreCheckedSeparately(t *testing.T) {
	s := expect(t, false,
		// k1: the read of k1 sees the put of "a" (to k2 it would be stale).
		onKey("k1", put(0, "a", 0, 10)),
		onKey("k2", put(1, "b", 20, 30)),
		onKey("k1", read(2, "a", 40, 50)),
		// lin/k2: stale.
		onKey("lin/k2", put(0, "a", 0, 10)),
		onKey("lin/k2", put(1, "b", 20, 30)),
		onKey("lin/k2", read(2, "a", 40, 50)),
	)
	if s.Keys != 3 || len(s.BadKeys) != 1 || s.BadKeys[0] != "lin/k2" {
		t.Fatalf("summary %+v", s)
	}
	if filepath.Base(s.HTMLFiles[0]) != "linearizability-lin_k2.html" {
		t.Fatalf("htmlFiles %v", s.HTMLFiles)
	}
}

func TestTimedOutCheckIsAFailure(t *testing.T) {
	saved := checkKey
	t.Cleanup(func() { checkKey = saved })
	checkKey = func(ops []porcupine.Operation, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
		_, info := saved(ops, timeout)
		return porcupine.Unknown, info
	}
	var log bytes.Buffer
	s, err := Check(History{Ops: []HistoryOp{put(0, "a", 0, 10)}}, t.TempDir(), time.Second, &log)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linearizable || len(s.TimedOutKeys) != 1 || len(s.BadKeys) != 1 {
		t.Fatalf("summary %+v", s)
	}
	if !strings.Contains(log.String(), "did not finish within 1s") {
		t.Fatalf("log: %s", log.String())
	}
}

// runWith writes ops (or raw JSON) to a file and runs the command line.
func runWith(t *testing.T, history string, extra ...string) (int, Summary, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "history.json")
	if err := os.WriteFile(path, []byte(history), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(append(extra, path, filepath.Join(dir, "out")), &stdout, &stderr)
	var s Summary
	if code != 2 {
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		if len(lines) != 1 {
			t.Fatalf("want one line on stdout, got %q", stdout.String())
		}
		if err := json.Unmarshal([]byte(lines[0]), &s); err != nil {
			t.Fatalf("stdout %q: %v", stdout.String(), err)
		}
	}
	return code, s, stderr.String()
}

func historyJSON(t *testing.T, ops ...HistoryOp) string {
	b, err := json.Marshal(History{Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCommandLine(t *testing.T) {
	code, s, _ := runWith(t, historyJSON(t, put(0, "a", 0, 10), read(1, "a", 20, 30)))
	if code != 0 || !s.Linearizable || s.Ops != 2 || s.Keys != 1 || s.BadKeys == nil {
		t.Fatalf("code %d, summary %+v", code, s)
	}

	code, s, stderr := runWith(t, historyJSON(t, put(0, "a", 0, 10), put(1, "b", 20, 30), read(2, "a", 40, 50)))
	if code != 1 || s.Linearizable || len(s.HTMLFiles) != 1 || !strings.Contains(stderr, s.HTMLFiles[0]) {
		t.Fatalf("code %d, summary %+v, stderr %s", code, s, stderr)
	}
	if _, err := os.Stat(s.HTMLFiles[0]); err != nil {
		t.Fatal(err)
	}

	// The documented format, as the workload writes it.
	code, s, _ = runWith(t, `{"ops":[
		{"client":0,"key":"lin/k3","op":"put","value":"c0-1","ok":true,"unknown":false,"invokeNs":123,"returnNs":456},
		{"client":1,"key":"lin/k3","op":"read","result":"c0-1","unknown":false,"invokeNs":130,"returnNs":470},
		{"client":2,"key":"lin/k3","op":"cas","expected":"c0-1","value":"c2-7","ok":true,"unknown":false,"invokeNs":500,"returnNs":900},
		{"client":0,"key":"lin/k3","op":"put","value":"c0-2","unknown":true,"invokeNs":950,"returnNs":2950}
	]}`, "-timeout", "5s")
	if code != 0 || s.UnknownOps != 1 || s.Ops != 4 {
		t.Fatalf("code %d, summary %+v", code, s)
	}

	for name, bad := range map[string]string{
		"not JSON":        `{"ops": [`,
		"bad op":          `{"ops":[{"client":0,"key":"k","op":"delete","invokeNs":1,"returnNs":2}]}`,
		"no key":          `{"ops":[{"client":0,"op":"read","invokeNs":1,"returnNs":2}]}`,
		"returns early":   `{"ops":[{"client":0,"key":"k","op":"read","invokeNs":5,"returnNs":2}]}`,
		"writes absent":   `{"ops":[{"client":0,"key":"k","op":"put","value":"","invokeNs":1,"returnNs":2}]}`,
		"negative client": `{"ops":[{"client":-1,"key":"k","op":"read","invokeNs":1,"returnNs":2}]}`,
	} {
		if code, _, stderr := runWith(t, bad); code != 2 || stderr == "" {
			t.Errorf("%s: code %d, stderr %q", name, code, stderr)
		}
	}

	var out, errOut bytes.Buffer
	if code := run([]string{"only-one-arg"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage") {
		t.Fatalf("usage: code %d, stderr %q", code, errOut.String())
	}
	if code := run([]string{filepath.Join(t.TempDir(), "missing.json"), t.TempDir()}, &out, &errOut); code != 2 {
		t.Fatalf("missing file: code %d", code)
	}
}
