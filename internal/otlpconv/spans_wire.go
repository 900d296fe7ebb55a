package otlpconv

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// errWire means the wire walk met something it leaves to pdata: malformed
// input (pdata words the error), or shapes it does not flatten itself
// (array/map values, string-table indexes, repeated singular messages,
// the pre-1.0 instrumentation-library field).
var errWire = errors.New("otlpconv: wire walk declined")

// AppendTracesProto flattens a protobuf ExportTraceServiceRequest into the
// batch with the same rows as UnmarshalTraces + AppendTraces, but in one
// pass over the bytes: every string is a substring of one copy of data, so
// a span costs no allocations of its own (the writer's hot path). Input
// the walk declines is decoded by pdata instead, which also supplies the
// error for malformed input. It returns the number of spans appended.
func (b *SpanBatch) AppendTracesProto(tenantID string, data []byte) (int, error) {
	return b.appendTracesProto(tenantID, data, string(data))
}

// AppendTracesProtoOwned is AppendTracesProto for a caller that hands data
// over: the rows' strings point into data itself instead of into a copy,
// so data must never change while the batch holds them (until Reset and
// refill). The writer's messages are such buffers: each is allocated for
// one message and only read; sparing the copy spares allocating and
// collecting a message's size per message.
func (b *SpanBatch) AppendTracesProtoOwned(tenantID string, data []byte) (int, error) {
	if len(data) == 0 {
		return b.AppendTracesProto(tenantID, data)
	}
	return b.appendTracesProto(tenantID, data, unsafe.String(&data[0], len(data)))
}

func (b *SpanBatch) appendTracesProto(tenantID string, data []byte, s string) (int, error) {
	mark := b.Len()
	w := wireWalk{b: b, s: s, tenant: tenantID, spanAttrs: b.walkAttrs, spanEvs: b.walkFields}
	n, err := w.request(data)
	b.walkAttrs, b.walkFields = w.spanAttrs[:0], w.spanEvs[:0]
	if err == nil {
		return n, nil
	}
	b.truncate(mark)
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data)
	if err != nil {
		return 0, err
	}
	b.AppendTraces(tenantID, td)
	return td.SpanCount(), nil
}

// truncate drops the rows after the first n (a declined walk may have
// appended some).
func (b *SpanBatch) truncate(n int) {
	v := reflect.ValueOf(b).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); v.Type().Field(i).IsExported() && f.Kind() == reflect.Slice && f.Len() > n {
			f.SetLen(n)
		}
	}
}

// wireWalk walks one request. s is data as a string: fields are cut from
// it by offset, so they share its one allocation.
type wireWalk struct {
	b      *SpanBatch
	s      string
	tenant string
	base   int // offset of the message being walked within s

	// Scratch of span: reused from span to span.
	spanAttrs          []attr
	spanEvs, spanLinks []field
}

// field is one decoded tag and value; a length-delimited value is
// data[start:end] of the request.
type field struct {
	num   protowire.Number
	typ   protowire.Type
	u     uint64 // varint, fixed32, fixed64
	start int
	end   int
}

// reader walks the fields of the message data[pos:end]. It is stricter
// than pdata (field numbers, varint overflow, groups): whatever it
// refuses goes to pdata.
type reader struct {
	data     []byte
	pos, end int
}

// varint reads a varint at r.pos.
func (r *reader) varint() (uint64, bool) {
	if r.pos < r.end {
		if b := r.data[r.pos]; b < 0x80 {
			r.pos++
			return uint64(b), true
		}
	}
	return r.varintSlow()
}

// varintSlow is varint past the one-byte case, which next handles in line
// for tags and lengths (most of them are one byte).
func (r *reader) varintSlow() (uint64, bool) {
	v, n := protowire.ConsumeVarint(r.data[r.pos:r.end])
	if n < 0 {
		return 0, false
	}
	r.pos += n
	return v, true
}

// next reads the next field into f; false at the end of the message.
func (r *reader) next(f *field) (bool, error) {
	if r.pos >= r.end {
		return false, nil
	}
	var tag uint64
	ok := true
	if b := r.data[r.pos]; b < 0x80 {
		tag = uint64(b)
		r.pos++
	} else {
		tag, ok = r.varintSlow()
	}
	if !ok || tag>>3 == 0 || tag>>3 > math.MaxInt32 {
		return false, errWire
	}
	f.num, f.typ = protowire.Number(tag>>3), protowire.Type(tag&7)
	switch f.typ {
	case protowire.VarintType:
		if f.u, ok = r.varint(); !ok {
			return false, errWire
		}
	case protowire.Fixed64Type:
		if r.end-r.pos < 8 {
			return false, errWire
		}
		f.u = binary.LittleEndian.Uint64(r.data[r.pos:])
		r.pos += 8
	case protowire.Fixed32Type:
		if r.end-r.pos < 4 {
			return false, errWire
		}
		f.u = uint64(binary.LittleEndian.Uint32(r.data[r.pos:]))
		r.pos += 4
	case protowire.BytesType:
		var n uint64
		if r.pos < r.end && r.data[r.pos] < 0x80 {
			n = uint64(r.data[r.pos])
			r.pos++
		} else if n, ok = r.varintSlow(); !ok {
			return false, errWire
		}
		if n > uint64(r.end-r.pos) {
			return false, errWire
		}
		f.start, f.end = r.pos, r.pos+int(n)
		r.pos = f.end
	default:
		return false, errWire
	}
	return true, nil
}

// sub is a reader over a length-delimited field's message.
func (r *reader) sub(f field) reader { return reader{data: r.data, pos: f.start, end: f.end} }

// fields calls fn for every field of data[start:end] (the cold paths; hot
// ones loop over a reader themselves).
func fields(data []byte, start, end int, fn func(f field) error) error {
	r := reader{data: data, pos: start, end: end}
	var f field
	for {
		ok, err := r.next(&f)
		if err != nil || !ok {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
	}
}

// want declines a known field number with an unexpected wire type, as
// pdata rejects it.
func want(f field, t protowire.Type) error {
	if f.typ != t {
		return errWire
	}
	return nil
}

func (w *wireWalk) bytes(f field) []byte { return []byte(w.s[f.start:f.end]) }
func (w *wireWalk) str(f field) string   { return w.s[f.start:f.end] }

// request: ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1 }.
func (w *wireWalk) request(data []byte) (int, error) {
	n := 0
	err := fields(data, 0, len(data), func(f field) error {
		if f.num != 1 {
			return nil
		}
		if err := want(f, protowire.BytesType); err != nil {
			return err
		}
		k, err := w.resourceSpans(data, f.start, f.end)
		n += k
		return err
	})
	return n, err
}

// resourceSpans: { Resource resource = 1; repeated ScopeSpans scope_spans = 2;
// string schema_url = 3; repeated InstrumentationLibrarySpans = 1000 }.
// The resource may follow its scope spans on the wire: read it first.
func (w *wireWalk) resourceSpans(data []byte, start, end int) (int, error) {
	var res *field
	err := fields(data, start, end, func(f field) error {
		switch f.num {
		case 1:
			if res != nil {
				return errWire // merged by pdata
			}
			res = &f
			return want(f, protowire.BytesType)
		case 2, 3:
			return want(f, protowire.BytesType)
		case 1000:
			return errWire
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var ri resourceInfo
	if res != nil {
		if ri, err = w.resource(data, res.start, res.end); err != nil {
			return 0, err
		}
	} else {
		ri.service = "unknown_service"
	}
	n := 0
	err = fields(data, start, end, func(f field) error {
		if f.num != 2 {
			return nil
		}
		k, err := w.scopeSpans(data, f.start, f.end, &ri)
		n += k
		return err
	})
	return n, err
}

// attr is one decoded KeyValue with a primitive value.
type attr struct {
	key, val string
	typ      uint8
}

// keyValue: { string key = 1; AnyValue value = 2; (key_strindex = 3) }.
// Attributes are most of a span: this and anyValue loop without closures.
func (w *wireWalk) keyValue(data []byte, start, end int) (attr, error) {
	var a attr
	seenValue := false
	r := reader{data: data, pos: start, end: end}
	var f field
	for {
		ok, err := r.next(&f)
		if err != nil {
			return a, err
		}
		if !ok {
			return a, nil
		}
		switch f.num {
		case 1:
			if f.typ != protowire.BytesType {
				return a, errWire
			}
			a.key = w.s[f.start:f.end]
		case 2:
			if seenValue || f.typ != protowire.BytesType {
				return a, errWire
			}
			seenValue = true
			if err := w.anyValue(data, f.start, f.end, &a); err != nil {
				return a, err
			}
		case 3:
			return a, errWire
		}
	}
}

// anyValue: oneof { string 1; bool 2; int64 3; double 4; array 5; kvlist 6;
// bytes 7; string_strindex 8 }; the last one set wins, as in pdata.
func (w *wireWalk) anyValue(data []byte, start, end int, a *attr) error {
	a.val, a.typ = "", TypeEmpty
	r := reader{data: data, pos: start, end: end}
	var f field
	for {
		ok, err := r.next(&f)
		if err != nil || !ok {
			return err
		}
		want := protowire.VarintType
		switch f.num {
		case 1:
			want = protowire.BytesType
			a.val, a.typ = w.s[f.start:f.end], TypeString
		case 2:
			a.val, a.typ = strconv.FormatBool(f.u != 0), TypeBool
		case 3:
			a.val, a.typ = strconv.FormatInt(int64(f.u), 10), TypeInt
		case 4:
			want = protowire.Fixed64Type
			a.val, a.typ = strconv.FormatFloat(math.Float64frombits(f.u), 'g', -1, 64), TypeDouble
		case 7:
			want = protowire.BytesType
			a.val, a.typ = base64.StdEncoding.EncodeToString(w.bytes(f)), TypeBytes
		case 5, 6, 8:
			return errWire
		default:
			want = f.typ
		}
		if f.typ != want {
			return errWire
		}
	}
}

// attrs decodes the KeyValues among msg's fields with number num.
func (w *wireWalk) attrs(data []byte, start, end int, num protowire.Number, out []attr) ([]attr, error) {
	err := fields(data, start, end, func(f field) error {
		if f.num != num {
			return nil
		}
		if err := want(f, protowire.BytesType); err != nil {
			return err
		}
		a, err := w.keyValue(data, f.start, f.end)
		out = append(out, a)
		return err
	})
	return out, err
}

// resource: { repeated KeyValue attributes = 1; uint32 dropped = 2; repeated EntityRef entity_refs = 3 }.
func (w *wireWalk) resource(data []byte, start, end int) (resourceInfo, error) {
	var ri resourceInfo
	err := fields(data, start, end, func(f field) error {
		switch f.num {
		case 2:
			return want(f, protowire.VarintType)
		case 3:
			return errWire // entity refs: left to pdata, which validates them
		}
		return nil
	})
	if err != nil {
		return ri, err
	}
	as, err := w.attrs(data, start, end, 1, nil)
	if err != nil {
		return ri, err
	}
	// newResourceInfo: the first attribute of a key wins (pcommon Map.Get);
	// promoted keys must be strings (AsString of other types differs from
	// EncodeValue).
	got := map[string]bool{}
	for _, a := range as {
		var dst *string
		switch a.key {
		case AttrServiceName:
			dst = &ri.service
		case AttrPodUID:
			dst = &ri.podUID
		case AttrPodName:
			dst = &ri.podName
		case AttrNamespace:
			dst = &ri.namespace
		case AttrNodeName:
			dst = &ri.node
		case AttrContainerID:
			dst = &ri.containerID
		case AttrContainerName:
			dst = &ri.containerName
		default:
			continue
		}
		if got[a.key] {
			continue
		}
		got[a.key] = true
		if a.typ != TypeString && a.typ != TypeEmpty {
			return ri, errWire
		}
		*dst = a.val
	}
	ri.containerID = NormalizeContainerID(ri.containerID)
	if ri.service == "" {
		ri.service = "unknown_service"
	}
	// dropPromoted.
	promoted := [...][2]string{
		{AttrServiceName, ri.service}, {AttrPodUID, ri.podUID}, {AttrPodName, ri.podName},
		{AttrNamespace, ri.namespace}, {AttrNodeName, ri.node}, {AttrContainerID, ri.containerID},
		{AttrContainerName, ri.containerName},
	}
	for _, a := range as {
		drop := false
		for _, p := range promoted {
			if a.key == p[0] {
				drop = a.typ == TypeString && a.val == p[1] && p[1] != "" && p[1] != "unknown_service"
				break
			}
		}
		if drop {
			continue
		}
		ri.keys = append(ri.keys, a.key)
		ri.values = append(ri.values, a.val)
		ri.types = append(ri.types, a.typ)
	}
	return ri, nil
}

// scopeSpans: { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3 }.
func (w *wireWalk) scopeSpans(data []byte, start, end int, ri *resourceInfo) (int, error) {
	var scopeName, scopeVersion string
	seenScope := false
	err := fields(data, start, end, func(f field) error {
		switch f.num {
		case 1:
			if seenScope {
				return errWire
			}
			seenScope = true
			if err := want(f, protowire.BytesType); err != nil {
				return err
			}
			// InstrumentationScope { name = 1; version = 2; attributes = 3; dropped = 4 }.
			return fields(data, f.start, f.end, func(g field) error {
				switch g.num {
				case 1:
					scopeName = w.str(g)
					return want(g, protowire.BytesType)
				case 2:
					scopeVersion = w.str(g)
					return want(g, protowire.BytesType)
				case 3:
					if err := want(g, protowire.BytesType); err != nil {
						return err
					}
					_, err := w.keyValue(data, g.start, g.end)
					return err
				case 4:
					return want(g, protowire.VarintType)
				}
				return nil
			})
		case 2, 3:
			return want(f, protowire.BytesType)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	err = fields(data, start, end, func(f field) error {
		if f.num != 2 {
			return nil
		}
		n++
		return w.span(data, f.start, f.end, ri, scopeName, scopeVersion)
	})
	return n, err
}

// idField checks an id's length the way pdata does (empty or exact) and
// reports whether it is all zero.
func idField(v string, size int) (string, error) {
	switch len(v) {
	case 0:
		if size == 16 {
			return zeroTraceID, nil
		}
		return zeroSpanID, nil
	case size:
		return v, nil
	}
	return "", errWire
}

func isZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != 0 {
			return false
		}
	}
	return true
}

// zeroIDs avoid an allocation per empty id.
var (
	zeroTraceID = string(make([]byte, 16))
	zeroSpanID  = string(make([]byte, 8))
)

// span: see opentelemetry-proto trace/v1 Span; appended only once whole.
func (w *wireWalk) span(data []byte, start, end int, ri *resourceInfo, scopeName, scopeVersion string) error {
	r := spanRow{traceID: zeroTraceID, spanID: zeroSpanID, scopeName: scopeName, scopeVersion: scopeVersion}
	seenStatus := false
	// One pass over the span's fields: attributes go to a scratch slice,
	// events and links (rare) are noted and read after it, once their
	// number is known.
	attrs, evs, links := w.spanAttrs[:0], w.spanEvs[:0], w.spanLinks[:0]
	rd := reader{data: data, pos: start, end: end}
	var f field
	for {
		more, err := rd.next(&f)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch f.num {
		case 1:
			if err = want(f, protowire.BytesType); err == nil {
				r.traceID, err = idField(w.str(f), 16)
			}
		case 2:
			if err = want(f, protowire.BytesType); err == nil {
				r.spanID, err = idField(w.str(f), 8)
			}
		case 3:
			err, r.state = want(f, protowire.BytesType), w.str(f)
		case 4:
			if err = want(f, protowire.BytesType); err == nil {
				r.parent, err = idField(w.str(f), 8)
			}
		case 5:
			err, r.name = want(f, protowire.BytesType), w.str(f)
		case 6:
			err, r.kind = want(f, protowire.VarintType), int8(int32(f.u))
		case 7:
			err, r.start = want(f, protowire.Fixed64Type), f.u
		case 8:
			err, r.end = want(f, protowire.Fixed64Type), f.u
		case 9:
			if err = want(f, protowire.BytesType); err == nil {
				var a attr
				a, err = w.keyValue(data, f.start, f.end)
				attrs = append(attrs, a)
			}
		case 10:
			err, r.droppedAttrs = want(f, protowire.VarintType), uint32(f.u)
		case 11:
			err = want(f, protowire.BytesType)
			evs = append(evs, f)
		case 12:
			err, r.droppedEvents = want(f, protowire.VarintType), uint32(f.u)
		case 13:
			err = want(f, protowire.BytesType)
			links = append(links, f)
		case 14:
			err, r.droppedLinks = want(f, protowire.VarintType), uint32(f.u)
		case 15:
			if seenStatus {
				return errWire
			}
			seenStatus = true
			if err = want(f, protowire.BytesType); err != nil {
				return err
			}
			// Status { string message = 2; StatusCode code = 3 }.
			err = fields(data, f.start, f.end, func(g field) error {
				switch g.num {
				case 2:
					r.statusMsg = w.str(g)
					return want(g, protowire.BytesType)
				case 3:
					r.statusCode = int8(int32(g.u))
					return want(g, protowire.VarintType)
				}
				return nil
			})
		case 16:
			err, r.flags = want(f, protowire.Fixed32Type), uint32(f.u)
		}
		if err != nil {
			return err
		}
	}
	w.spanAttrs, w.spanEvs, w.spanLinks = attrs, evs, links // keep their capacity for the next span
	if r.parent != "" && isZero(r.parent) {
		r.parent = ""
	}

	b := w.b
	nAttrs, nEvents, nLinks := len(attrs), len(evs), len(links)
	r.attrKeys, r.attrValues, r.attrTypes = cut(&b.strSlab, nAttrs)[:nAttrs], cut(&b.strSlab, nAttrs)[:nAttrs], cut(&b.u8Slab, nAttrs)[:nAttrs]
	for i, a := range attrs {
		r.attrKeys[i], r.attrValues[i], r.attrTypes[i] = a.key, a.val, a.typ
	}
	r.eventTimes, r.eventNames, r.eventAttrs = cut(&b.u64Slab, nEvents)[:nEvents], cut(&b.strSlab, nEvents)[:nEvents], cut(&b.strSlab, nEvents)[:nEvents]
	r.linkTraceIDs, r.linkSpanIDs = cut(&b.strSlab, nLinks)[:nLinks], cut(&b.strSlab, nLinks)[:nLinks]
	r.linkStates, r.linkAttrs = cut(&b.strSlab, nLinks)[:nLinks], cut(&b.strSlab, nLinks)[:nLinks]
	var scratch []attr
	for ie, f := range evs {
		// Event { fixed64 time = 1; string name = 2; repeated KeyValue attributes = 3; dropped = 4 }.
		var err error
		if r.eventAttrs[ie], scratch, err = w.attrsJSON(data, f, 3, scratch); err != nil {
			return err
		}
		err = fields(data, f.start, f.end, func(g field) error {
			switch g.num {
			case 1:
				r.eventTimes[ie] = g.u
				return want(g, protowire.Fixed64Type)
			case 2:
				r.eventNames[ie] = w.str(g)
				return want(g, protowire.BytesType)
			case 3:
				return want(g, protowire.BytesType)
			case 4:
				return want(g, protowire.VarintType)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for il, f := range links {
		// Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3;
		// repeated KeyValue attributes = 4; dropped = 5; fixed32 flags = 6 }.
		var err error
		if r.linkAttrs[il], scratch, err = w.attrsJSON(data, f, 4, scratch); err != nil {
			return err
		}
		err = fields(data, f.start, f.end, func(g field) error {
			var err error
			switch g.num {
			case 1:
				if err = want(g, protowire.BytesType); err == nil {
					r.linkTraceIDs[il], err = linkID(w.str(g), 16)
				}
			case 2:
				if err = want(g, protowire.BytesType); err == nil {
					r.linkSpanIDs[il], err = linkID(w.str(g), 8)
				}
			case 3:
				err, r.linkStates[il] = want(g, protowire.BytesType), w.str(g)
			case 4:
				err = want(g, protowire.BytesType)
			case 5:
				err = want(g, protowire.VarintType)
			case 6:
				err = want(g, protowire.Fixed32Type)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	w.b.appendRow(w.tenant, ri, &r)
	return nil
}

// linkID renders a link's id as pcommon's String does: lower hex, "" when
// all zero.
func linkID(v string, size int) (string, error) {
	id, err := idField(v, size)
	if err != nil || isZero(id) {
		return "", err
	}
	return hex.EncodeToString([]byte(id)), nil
}

// attrsJSON renders the attributes (field num) of the event or link in f
// as AttrsJSON does; scratch is reused across calls and returned.
func (w *wireWalk) attrsJSON(data []byte, f field, num protowire.Number, scratch []attr) (string, []attr, error) {
	scratch, err := w.attrs(data, f.start, f.end, num, scratch[:0])
	if err != nil {
		return "", scratch, err
	}
	js, err := attrsJSON(scratch)
	return js, scratch, err
}

// attrsJSON is AttrsJSON for decoded attributes: a JSON object of the
// values as pcommon's AsRaw gives them, later keys winning. Bytes are
// declined: AsRaw turns empty bytes into a nil slice (JSON null).
func attrsJSON(as []attr) (string, error) {
	if len(as) == 0 {
		return "", nil
	}
	m := make(map[string]any, len(as))
	for _, a := range as {
		var raw any
		switch a.typ {
		case TypeString:
			raw = a.val
		case TypeBool:
			raw = a.val == "true"
		case TypeInt:
			raw, _ = strconv.ParseInt(a.val, 10, 64)
		case TypeDouble:
			raw, _ = strconv.ParseFloat(a.val, 64) // 'g' -1 round-trips
		case TypeBytes:
			return "", errWire
		}
		m[a.key] = raw
	}
	out, err := json.Marshal(m)
	if err != nil {
		return "", nil // as AttrsJSON: NaN/Inf have no JSON form
	}
	return string(out), nil
}
