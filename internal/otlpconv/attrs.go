// Package otlpconv converts OTLP data (collector pdata) to ClickHouse rows
// and back to API values.
package otlpconv

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Attribute value types as stored in the *_types arrays beside the
// *_keys/*_values string arrays. Values are stored as text so that one
// column holds every type; the type code keeps them round-trippable.
const (
	TypeEmpty  uint8 = 0 // value ""
	TypeString uint8 = 1 // the string itself
	TypeBool   uint8 = 2 // "true" / "false"
	TypeInt    uint8 = 3 // decimal int64
	TypeDouble uint8 = 4 // strconv 'g' -1
	TypeBytes  uint8 = 5 // standard base64
	TypeSlice  uint8 = 6 // JSON array of raw values
	TypeMap    uint8 = 7 // JSON object of raw values
)

// AppendAttrs appends every attribute of m to the three parallel arrays.
func AppendAttrs(keys, values []string, types []uint8, m pcommon.Map) ([]string, []string, []uint8) {
	m.Range(func(k string, v pcommon.Value) bool {
		s, t := EncodeValue(v)
		keys = append(keys, k)
		values = append(values, s)
		types = append(types, t)
		return true
	})
	return keys, values, types
}

// EncodeValue renders v as text plus its type code.
func EncodeValue(v pcommon.Value) (string, uint8) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str(), TypeString
	case pcommon.ValueTypeBool:
		return strconv.FormatBool(v.Bool()), TypeBool
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(v.Int(), 10), TypeInt
	case pcommon.ValueTypeDouble:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64), TypeDouble
	case pcommon.ValueTypeBytes:
		return base64.StdEncoding.EncodeToString(v.Bytes().AsRaw()), TypeBytes
	case pcommon.ValueTypeSlice:
		b, _ := json.Marshal(v.Slice().AsRaw())
		return string(b), TypeSlice
	case pcommon.ValueTypeMap:
		b, _ := json.Marshal(v.Map().AsRaw())
		return string(b), TypeMap
	}
	return "", TypeEmpty
}

// DecodeValue turns a stored value back into a JSON-ready Go value.
func DecodeValue(s string, t uint8) any {
	switch t {
	case TypeString:
		return s
	case TypeBool:
		return s == "true"
	case TypeInt:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case TypeDouble:
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
		return s // NaN/Inf have no JSON number form: keep the text
	case TypeBytes:
		return s // base64, as OTLP/JSON renders bytes
	case TypeSlice, TypeMap:
		if json.Valid([]byte(s)) {
			return json.RawMessage(s)
		}
	case TypeEmpty:
		return nil
	}
	return s
}

// DecodeAttrs rebuilds an attribute map from the three parallel arrays.
// Arrays of unequal length (never written by us) are read up to the
// shortest.
func DecodeAttrs(keys, values []string, types []uint8) map[string]any {
	n := min(len(keys), len(values), len(types))
	out := make(map[string]any, n)
	for i := 0; i < n; i++ {
		out[keys[i]] = DecodeValue(values[i], types[i])
	}
	return out
}

// AttrsJSON renders a pdata map as a JSON object of raw values (used for
// span event and link attributes, stored as one string each).
func AttrsJSON(m pcommon.Map) string {
	if m.Len() == 0 {
		return ""
	}
	b, err := json.Marshal(m.AsRaw())
	if err != nil {
		return ""
	}
	return string(b)
}
