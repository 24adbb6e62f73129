// Command lincheck checks a history of operations on Consul's KV store for linearizability, key by
// key, with porcupine (github.com/anishathalye/porcupine), in the manner of Jepsen's Knossos.
//
// Usage:
//
//	lincheck [-timeout 60s] HISTORY.json OUTDIR
//
// HISTORY.json holds the operations one workload recorded (see ../linearizability.ts):
//
//	{"ops": [
//	  {"client": 0, "key": "lin/k3", "op": "put",  "value": "c0-1",                    "ok": true,  "unknown": false, "invokeNs": 123, "returnNs": 456},
//	  {"client": 1, "key": "lin/k3", "op": "read", "result": "c0-1",                                  "unknown": false, "invokeNs": 130, "returnNs": 470},
//	  {"client": 2, "key": "lin/k3", "op": "cas",  "expected": "c0-1", "value": "c2-7", "ok": false, "unknown": false, "invokeNs": 500, "returnNs": 900}
//	]}
//
// Fields of one operation:
//
//   - client: the workload's client (>= 0) that ran it; clients run one operation at a time.
//   - key: the Consul key. Keys are independent registers, so each is checked on its own.
//   - op: "put" (write value unconditionally), "cas" (write value if the key still holds expected)
//     or "read" (a ?consistent GET).
//   - value: the value put or CAS-written; result: the value a read returned; "" means absent.
//   - expected: for cas, the value the client had read together with the ModifyIndex it passed as
//     ?cas=<index> ("" with ?cas=0 when the key was absent); ok: Consul's answer true/false.
//   - unknown: the client does not know whether the operation took effect (timeout, connection
//     error, 5xx). Such an operation may take effect at any time after its invocation, so it is
//     given a return time of +infinity and the model lets it either take effect or not. Unknown
//     reads have no effect and are dropped.
//   - invokeNs, returnNs: monotonic nanoseconds (any common origin) when the client sent the request
//     and when it had the answer; returnNs is ignored for unknown operations.
//
// The program prints one line of JSON to stdout:
//
//	{"ops":N,"keys":K,"linearizable":true|false,"badKeys":[...],"unknownOps":U,"timedOutKeys":[...],"htmlFiles":[...]}
//
// and exits 0 when every key's history is linearizable, 1 when one is not (or its check timed out:
// porcupine's Unknown is treated as a failure), 2 on usage or parse errors. For each bad key it writes
// porcupine's visualisation to OUTDIR/linearizability-<key>.html (characters other than
// [A-Za-z0-9._-] in the key replaced by "_") and names the file on stderr.
//
// The model: a register per key, whose state is the key's current value ("" = absent, which is why
// the workload never writes "" and never deletes during a run). Consul's CAS compares ModifyIndex,
// not values; the model compares values instead. That is exact only because the workload writes
// unique values (every put and CAS writes a value never written before), so "the key holds the value
// I read" is equivalent to "the key's ModifyIndex is still the one I read": any later write would
// have changed the value as well as the index. So a CAS answered true is legal only if the state
// equals expected, and one answered false only if it does not (with non-unique values a false CAS
// whose expected value equals the state could be legal, an ABA write in between, and the check would
// report false positives).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// HistoryOp is one recorded operation (the JSON format above).
type HistoryOp struct {
	Client   int    `json:"client"`
	Key      string `json:"key"`
	Op       string `json:"op"`
	Value    string `json:"value"`
	Expected string `json:"expected"`
	Result   string `json:"result"`
	Ok       bool   `json:"ok"`
	Unknown  bool   `json:"unknown"`
	InvokeNs int64  `json:"invokeNs"`
	ReturnNs int64  `json:"returnNs"`
}

// History is the whole file.
type History struct {
	Ops []HistoryOp `json:"ops"`
}

// Summary is the line printed on stdout.
type Summary struct {
	Ops          int      `json:"ops"`
	Keys         int      `json:"keys"`
	Linearizable bool     `json:"linearizable"`
	BadKeys      []string `json:"badKeys"`
	UnknownOps   int      `json:"unknownOps"`
	TimedOutKeys []string `json:"timedOutKeys"`
	HTMLFiles    []string `json:"htmlFiles"`
}

// kvInput and kvOutput are porcupine's operation input and output (comparable structs).
type kvInput struct {
	Op       string // "put", "cas" or "read"
	Value    string // put, cas: the value written
	Expected string // cas: the value the client expected to be current
	Unknown  bool   // put, cas: may or may not have taken effect
}

type kvOutput struct {
	Result string // read: the value read ("" = absent)
	Ok     bool   // cas: Consul's answer
}

func show(v string) string {
	if v == "" {
		return "absent"
	}
	return fmt.Sprintf("%q", v)
}

// step returns every state the register can be in after the operation, from state s; none if the
// operation could not have returned what it did.
func step(state, input, output interface{}) []interface{} {
	s := state.(string)
	in := input.(kvInput)
	out := output.(kvOutput)
	switch in.Op {
	case "put":
		if in.Unknown {
			return []interface{}{s, in.Value}
		}
		return []interface{}{in.Value}
	case "cas":
		if in.Unknown {
			if s == in.Expected {
				return []interface{}{s, in.Value}
			}
			return []interface{}{s}
		}
		if out.Ok == (s == in.Expected) {
			if out.Ok {
				return []interface{}{in.Value}
			}
			return []interface{}{s}
		}
		return nil
	case "read":
		if out.Result == s {
			return []interface{}{s}
		}
		return nil
	}
	return nil
}

// registerModel is the per-key model; non-deterministic because of unknown writes.
var registerModel = porcupine.NondeterministicModel{
	Init: func() []interface{} { return []interface{}{""} },
	Step: step,
	Hash: func(state interface{}) uint64 {
		h := fnv.New64a()
		_, _ = h.Write([]byte(state.(string)))
		return h.Sum64()
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(kvInput)
		out := output.(kvOutput)
		switch in.Op {
		case "put":
			if in.Unknown {
				return fmt.Sprintf("put(%q) → ?", in.Value)
			}
			return fmt.Sprintf("put(%q)", in.Value)
		case "cas":
			if in.Unknown {
				return fmt.Sprintf("cas(%s → %q) → ?", show(in.Expected), in.Value)
			}
			return fmt.Sprintf("cas(%s → %q) → %v", show(in.Expected), in.Value, out.Ok)
		default:
			return fmt.Sprintf("read() → %s", show(out.Result))
		}
	},
	DescribeState: func(state interface{}) string { return show(state.(string)) },
}

// Model is registerModel as a deterministic porcupine.Model (power-set construction).
var Model = registerModel.ToModel()

func validate(i int, op HistoryOp) error {
	switch {
	case op.Key == "":
		return fmt.Errorf("op %d: no key", i)
	case op.Client < 0:
		return fmt.Errorf("op %d: client %d < 0", i, op.Client)
	case op.Op != "put" && op.Op != "cas" && op.Op != "read":
		return fmt.Errorf("op %d: op %q is not put, cas or read", i, op.Op)
	case (op.Op == "put" || op.Op == "cas") && op.Value == "":
		return fmt.Errorf("op %d: %s of the empty value (\"\" means absent)", i, op.Op)
	case !op.Unknown && op.ReturnNs < op.InvokeNs:
		return fmt.Errorf("op %d: returnNs %d < invokeNs %d", i, op.ReturnNs, op.InvokeNs)
	}
	return nil
}

// ParseHistory reads and validates a history.
func ParseHistory(r io.Reader) (History, error) {
	var h History
	dec := json.NewDecoder(r)
	if err := dec.Decode(&h); err != nil {
		return h, fmt.Errorf("parsing history: %w", err)
	}
	for i, op := range h.Ops {
		if err := validate(i, op); err != nil {
			return h, err
		}
	}
	return h, nil
}

// operations turns one key's history into porcupine operations. Unknown writes never return
// (return time +infinity) and, like a crashed Jepsen process, get a client id of their own so that
// the visualisation does not draw them over their client's later operations.
func operations(ops []HistoryOp) []porcupine.Operation {
	maxClient := 0
	for _, op := range ops {
		if op.Client > maxClient {
			maxClient = op.Client
		}
	}
	nextClient := maxClient + 1
	var out []porcupine.Operation
	for _, op := range ops {
		in := kvInput{Op: op.Op, Value: op.Value, Expected: op.Expected, Unknown: op.Unknown}
		var o kvOutput
		switch op.Op {
		case "read":
			in.Value, in.Expected = "", ""
			o.Result = op.Result
		case "cas":
			o.Ok = op.Ok && !op.Unknown
		case "put":
			in.Expected = ""
		}
		client, ret, meta := op.Client, op.ReturnNs, fmt.Sprintf("client %d", op.Client)
		if op.Unknown {
			client, ret = nextClient, math.MaxInt64
			nextClient++
			meta += ", outcome unknown (never returns)"
		}
		out = append(out, porcupine.Operation{
			ClientId: client,
			Input:    in,
			Call:     op.InvokeNs,
			Output:   o,
			Return:   ret,
			Metadata: meta,
		})
	}
	return out
}

// checkKey checks one key's operations (a variable so that tests can simulate a timeout).
var checkKey = func(ops []porcupine.Operation, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	return porcupine.CheckOperationsVerbose(Model, ops, timeout)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// HTMLName is the visualisation's file name for a key.
func HTMLName(key string) string {
	return "linearizability-" + unsafeChars.ReplaceAllString(key, "_") + ".html"
}

// Check checks every key of h, writing visualisations of bad keys into outDir and notes to log.
func Check(h History, outDir string, timeout time.Duration, log io.Writer) (Summary, error) {
	s := Summary{Ops: len(h.Ops), BadKeys: []string{}, TimedOutKeys: []string{}, HTMLFiles: []string{}}
	byKey := map[string][]HistoryOp{}
	for _, op := range h.Ops {
		if op.Unknown {
			s.UnknownOps++
		}
		if _, seen := byKey[op.Key]; !seen {
			byKey[op.Key] = nil
		}
		if op.Op == "read" && op.Unknown {
			continue // a read that may not have happened has no effect
		}
		byKey[op.Key] = append(byKey[op.Key], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s.Keys = len(keys)
	for _, key := range keys {
		res, info := checkKey(operations(byKey[key]), timeout)
		switch res {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			fmt.Fprintf(log, "lincheck: key %s: the check did not finish within %s (porcupine returned Unknown); "+
				"counted as a failure: the history may or may not be linearizable\n", key, timeout)
			s.TimedOutKeys = append(s.TimedOutKeys, key)
		default:
			fmt.Fprintf(log, "lincheck: key %s: history of %d operations is NOT linearizable\n", key, len(byKey[key]))
		}
		s.BadKeys = append(s.BadKeys, key)
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return s, err
		}
		path := filepath.Join(outDir, HTMLName(key))
		if err := porcupine.VisualizePath(Model, info, path); err != nil {
			return s, fmt.Errorf("key %s: writing %s: %w", key, path, err)
		}
		fmt.Fprintf(log, "lincheck: key %s: visualisation in %s\n", key, path)
		s.HTMLFiles = append(s.HTMLFiles, path)
	}
	s.Linearizable = len(s.BadKeys) == 0
	return s, nil
}

var errUsage = errors.New("usage: lincheck [-timeout 60s] HISTORY.json OUTDIR")

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lincheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 60*time.Second, "time limit of the check of one key (0 = none)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(stderr, errUsage)
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "lincheck: %v\n", err)
		return 2
	}
	h, err := ParseHistory(f)
	_ = f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "lincheck: %s: %v\n", fs.Arg(0), err)
		return 2
	}
	s, err := Check(h, fs.Arg(1), *timeout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "lincheck: %v\n", err)
		return 2
	}
	line, _ := json.Marshal(s)
	fmt.Fprintln(stdout, string(line))
	if !s.Linearizable {
		return 1
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
