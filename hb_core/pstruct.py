"""Persistent (immutable, structure-sharing) containers for the controller's state.

``decide`` returns a new state and leaves the old one intact. With plain tuples
every round would copy whole rungs and the whole trial list, O(n) in the
number of trials. These containers share all untouched structure, so an update
costs O(log n):

- :class:`SortedItems`: a sorted multiset with ranks (an order-statistic treap).
  ``rank``, ``insert``, ``remove``, ``kth`` are O(log n) expected.
- :class:`PVector`: a list indexed 0..n-1 (a 32-way trie). ``set`` and
  ``append`` copy one path of at most ``log32 n`` nodes.

Both are ``Sequence``s: they compare equal to any sequence with the same
items, iterate in order, and serialise as plain lists. Treap priorities come
from ``hash((item, size))`` of numbers, which Python does not randomise, so the
same operations give the same trees in every process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

__all__ = ["PVector", "SortedItems"]

T = TypeVar("T")

# A treap node: (item, priority, left, right, size). None is the empty tree.
_Node = tuple[Any, int, Any, Any, int]


def _size(node: _Node | None) -> int:
    return node[4] if node is not None else 0


def _make(item: Any, priority: int, left: _Node | None, right: _Node | None) -> _Node:
    return (item, priority, left, right, 1 + _size(left) + _size(right))


def _split(node: _Node | None, item: Any) -> tuple[_Node | None, _Node | None]:
    """(items < item, items >= item)."""
    if node is None:
        return None, None
    if node[0] < item:
        low, high = _split(node[3], item)
        return _make(node[0], node[1], node[2], low), high
    low, high = _split(node[2], item)
    return low, _make(node[0], node[1], high, node[3])


def _merge(low: _Node | None, high: _Node | None) -> _Node | None:
    if low is None:
        return high
    if high is None:
        return low
    if low[1] > high[1]:
        return _make(low[0], low[1], low[2], _merge(low[3], high))
    return _make(high[0], high[1], _merge(low, high[2]), high[3])


def _remove_first(node: _Node | None, item: Any) -> tuple[_Node | None, bool]:
    if node is None:
        return None, False
    if item < node[0]:
        left, done = _remove_first(node[2], item)
        return (_make(node[0], node[1], left, node[3]) if done else node), done
    if node[0] < item:
        right, done = _remove_first(node[3], item)
        return (_make(node[0], node[1], node[2], right) if done else node), done
    return _merge(node[2], node[3]), True


class _ValueSequence(Sequence[T]):
    """Value semantics: equal to any sequence with the same items, hashed as the tuple of them."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def _at(self, index: int) -> T:
        """The item at ``0 <= index < len(self)``."""
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(len(self)))]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(index)
        return self._at(position)


class SortedItems(_ValueSequence[T]):
    """An immutable sorted multiset; every update returns a new one sharing structure."""

    __slots__ = ("_root",)

    def __init__(self, items: Iterable[T] = ()) -> None:
        root: _Node | None = None
        for item in items:
            root = self._inserted(root, item)
        self._root = root

    @classmethod
    def _wrap(cls, root: _Node | None) -> SortedItems[T]:
        new = object.__new__(cls)
        new._root = root
        return new

    @staticmethod
    def _inserted(root: _Node | None, item: Any) -> _Node | None:
        low, high = _split(root, item)
        return _merge(_merge(low, (item, hash((item, _size(root))), None, None, 1)), high)

    def insert(self, item: T) -> SortedItems[T]:
        return self._wrap(self._inserted(self._root, item))

    def remove(self, item: T) -> SortedItems[T]:
        """Without one occurrence of ``item`` (unchanged when absent)."""
        root, _ = _remove_first(self._root, item)
        return self._wrap(root)

    def rank(self, item: T) -> int:
        """How many items are strictly smaller than ``item`` (``bisect_left``)."""
        node, count = self._root, 0
        while node is not None:
            if node[0] < item:
                count += _size(node[2]) + 1
                node = node[3]
            else:
                node = node[2]
        return count

    def kth(self, k: int) -> T:
        """The item of 0-based rank ``k``."""
        if not 0 <= k < len(self):
            raise IndexError(k)
        node = self._root
        while node is not None:
            left = _size(node[2])
            if k < left:
                node = node[2]
            elif k == left:
                item: T = node[0]
                return item
            else:
                k -= left + 1
                node = node[3]
        raise IndexError(k)  # unreachable: sizes are consistent

    def __len__(self) -> int:
        return _size(self._root)

    def _at(self, index: int) -> T:
        return self.kth(index)

    def __iter__(self) -> Iterator[T]:
        stack: list[_Node] = []
        node = self._root
        while stack or node is not None:
            while node is not None:
                stack.append(node)
                node = node[2]
            node = stack.pop()
            yield node[0]
            node = node[3]

    def __repr__(self) -> str:
        return f"SortedItems({list(self)!r})"


_BITS = 5
_WIDTH = 1 << _BITS
_MASK = _WIDTH - 1


class PVector(_ValueSequence[T]):
    """An immutable list: ``set`` and ``append`` return new vectors sharing all untouched nodes."""

    __slots__ = ("_root", "_len", "_shift")
    _root: tuple[Any, ...]
    _len: int
    _shift: int

    def __init__(self, items: Iterable[T] = ()) -> None:
        vector: PVector[T] = self._empty()
        for item in items:
            vector = vector.append(item)
        self._root, self._len, self._shift = vector._root, vector._len, vector._shift

    @classmethod
    def _empty(cls) -> PVector[T]:
        return cls._wrap((), 0, 0)

    @classmethod
    def _wrap(cls, root: tuple[Any, ...], length: int, shift: int) -> PVector[T]:
        new = object.__new__(cls)
        new._root, new._len, new._shift = root, length, shift
        return new

    def __len__(self) -> int:
        return self._len

    def _at(self, index: int) -> T:
        node = self._root
        for shift in range(self._shift, 0, -_BITS):
            node = node[(index >> shift) & _MASK]
        item: T = node[index & _MASK]
        return item

    def set(self, index: int, item: T) -> PVector[T]:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(index)
        return self._wrap(self._assoc(self._root, self._shift, index, item), self._len, self._shift)

    def append(self, item: T) -> PVector[T]:
        index = self._len
        root, shift = self._root, self._shift
        if index == _WIDTH << shift:  # full: grow a level
            root, shift = (root,), shift + _BITS
        return self._wrap(self._assoc(root, shift, index, item), index + 1, shift)

    @classmethod
    def _assoc(cls, node: tuple[Any, ...], shift: int, index: int, item: Any) -> tuple[Any, ...]:
        slot = (index >> shift) & _MASK
        value = item if shift == 0 else cls._assoc(node[slot] if slot < len(node) else (), shift - _BITS, index, item)
        return node[:slot] + (value,) + node[slot + 1 :]

    def __iter__(self) -> Iterator[T]:
        for index in range(self._len):
            yield self._at(index)

    def __repr__(self) -> str:
        return f"PVector({list(self)!r})"
