package routerconfig

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTextPatch: a configuration's text with entities put in, replaced and
// taken out, at the start, in the middle and at the end, is what Marshal
// writes of the configuration changed so, byte for byte.
func TestTextPatch(t *testing.T) {
	entity := func(i int) Entity {
		return Entity{"tcpListener", map[string]any{"name": fmt.Sprintf("listener/l%d", i), "host": "127.0.0.1", "port": fmt.Sprint(9000 + i), "address": "k"}}
	}
	cfg := Config{{"router", map[string]any{"mode": "interior", "id": "x"}}, entity(0), entity(1)}
	text, err := cfg.MarshalText(nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 300 {
		var op string
		i := rng.IntN(len(cfg) + 1)
		switch {
		case rng.IntN(3) == 0 && len(cfg) > 1 && i < len(cfg):
			op = fmt.Sprintf("remove %d", i)
			cfg = slices.Delete(slices.Clone(cfg), i, i+1)
			text, err = text.Remove(i)
		case rng.IntN(2) == 0 && i < len(cfg):
			op = fmt.Sprintf("replace %d", i)
			e := entity(1000 + step)
			cfg = slices.Clone(cfg)
			cfg[i] = e
			text, err = text.Put(i, e, false)
		default:
			op = fmt.Sprintf("insert %d", i)
			e := entity(2000 + step)
			cfg = slices.Insert(slices.Clone(cfg), i, e)
			text, err = text.Put(i, e, true)
		}
		if err != nil {
			t.Fatalf("step %d, %s: %v", step, op, err)
		}
		want, err := cfg.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(text.JSON) != string(want) {
			t.Fatalf("step %d, %s:\n%s\nwant\n%s", step, op, text.JSON, want)
		}
	}
	if _, err := text.Put(len(cfg)+1, entity(1), true); err == nil {
		t.Error("an entity put in past the end")
	}
}
