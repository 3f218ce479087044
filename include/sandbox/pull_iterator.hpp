#pragma once
/// @file
/// The input iterator behind the SDK's pull ranges (ExecStream, LogStream, FileWatch):
/// `for (auto& item : stream)` pulls items one by one until the stream ends.
#include <cstddef>
#include <iterator>
#include <optional>

namespace sandbox {

/// Walks a `Stream` whose `next()` returns `std::optional<T>` (nullopt at the end). Reading the
/// first item happens when the iterator is made (in `begin()`).
template <class Stream, class T>
class PullIterator {
  public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    PullIterator() = default;
    /// Pulls the first item of `s`.
    explicit PullIterator(Stream* s) : s_(s) { ++*this; }
    /// The current item.
    T& operator*() { return *cur_; }
    /// The current item's members.
    T* operator->() { return &*cur_; }
    /// Pulls the next item.
    PullIterator& operator++() {
        cur_ = s_->next();
        return *this;
    }
    /// Pulls the next item.
    void operator++(int) { ++*this; }
    /// True once the stream has ended.
    bool operator==(std::default_sentinel_t) const { return !cur_; }

  private:
    Stream* s_ = nullptr;
    std::optional<T> cur_;
};

}  // namespace sandbox
