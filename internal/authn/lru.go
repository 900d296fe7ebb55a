package authn

import "container/list"

// lru is a map of at most max entries that forgets the least recently used
// one first. Not safe for concurrent use: Cached guards it with its mutex.
type lru[K comparable, V any] struct {
	max   int
	items map[K]*list.Element
	order *list.List // of *lruItem[K, V], most recently used first
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, items: make(map[K]*list.Element), order: list.New()}
}

// get returns the value of k and marks it used.
func (l *lru[K, V]) get(k K) (V, bool) {
	el, ok := l.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	l.order.MoveToFront(el)
	return el.Value.(*lruItem[K, V]).val, true
}

// put stores v under k as the most recently used entry, forgetting the
// least recently used ones beyond max.
func (l *lru[K, V]) put(k K, v V) {
	if el, ok := l.items[k]; ok {
		el.Value.(*lruItem[K, V]).val = v
		l.order.MoveToFront(el)
		return
	}
	l.items[k] = l.order.PushFront(&lruItem[K, V]{key: k, val: v})
	for l.order.Len() > l.max {
		l.removeElement(l.order.Back())
	}
}

func (l *lru[K, V]) remove(k K) {
	if el, ok := l.items[k]; ok {
		l.removeElement(el)
	}
}

// removeIf removes every entry for which drop is true.
func (l *lru[K, V]) removeIf(drop func(K, V) bool) {
	for el := l.order.Front(); el != nil; {
		next := el.Next()
		if it := el.Value.(*lruItem[K, V]); drop(it.key, it.val) {
			l.removeElement(el)
		}
		el = next
	}
}

func (l *lru[K, V]) clear() {
	clear(l.items)
	l.order.Init()
}

func (l *lru[K, V]) len() int { return l.order.Len() }

func (l *lru[K, V]) removeElement(el *list.Element) {
	delete(l.items, el.Value.(*lruItem[K, V]).key)
	l.order.Remove(el)
}
