package otlpconv

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestValueRoundTrip(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("s", `it's "quoted" \ ü`)
	m.PutBool("b", true)
	m.PutInt("i", -42)
	m.PutDouble("d", 0.125)
	m.PutDouble("nan", math.NaN())
	m.PutDouble("inf", math.Inf(1))
	m.PutEmptyBytes("y").FromRaw([]byte{0, 1, 2})
	sl := m.PutEmptySlice("a")
	sl.AppendEmpty().SetStr("x")
	sl.AppendEmpty().SetInt(1)
	mm := m.PutEmptyMap("m")
	mm.PutStr("k", "v")
	m.PutEmpty("e")

	keys, values, types := AppendAttrs(nil, nil, nil, m)
	got := DecodeAttrs(keys, values, types)
	want := map[string]any{
		"s":   `it's "quoted" \ ü`,
		"b":   true,
		"i":   int64(-42),
		"d":   0.125,
		"nan": "NaN",
		"inf": "+Inf",
		"y":   "AAEC",
		"a":   json.RawMessage(`["x",1]`),
		"m":   json.RawMessage(`{"k":"v"}`),
		"e":   nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%#v\nwant\n%#v", got, want)
	}
	if _, err := json.Marshal(got); err != nil {
		t.Errorf("decoded attributes do not encode as JSON: %v", err)
	}
}

func TestDecodeAttrsUnequalArrays(t *testing.T) {
	got := DecodeAttrs([]string{"a", "b"}, []string{"1"}, []uint8{TypeInt, TypeInt})
	if len(got) != 1 || got["a"] != int64(1) {
		t.Errorf("got %#v", got)
	}
}

func TestNormalizeContainerID(t *testing.T) {
	cases := map[string]string{
		"containerd://ABCDEF0123": "abcdef0123",
		"docker://abc":            "abc",
		"cri-o://Abc":             "abc",
		" abc ":                   "abc",
		"":                        "",
	}
	for in, want := range cases {
		if got := NormalizeContainerID(in); got != want {
			t.Errorf("NormalizeContainerID(%q) = %q, want %q", in, got, want)
		}
	}
}
