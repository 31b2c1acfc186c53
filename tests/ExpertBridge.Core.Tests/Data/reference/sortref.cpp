// Prints the index order libstdc++'s std::sort (comparator: key descending) gives, as ATen's unstable CPU sort does.
// Input lines: "<depth|-1> <n> k0 k1 ..."; depth -1 = std::sort itself, else introsort with that depth limit.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>
int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    long depth; size_t n; in >> depth >> n;
    std::vector<std::pair<float, long>> v(n);
    for (size_t i = 0; i < n; ++i) { in >> v[i].first; v[i].second = (long)i; }
    auto comp = [](const std::pair<float, long>& a, const std::pair<float, long>& b) { return a.first > b.first; };
    if (depth < 0) {
      std::sort(v.begin(), v.end(), comp);
    } else if (n > 1) {
      auto c = __gnu_cxx::__ops::__iter_comp_iter(comp);
      std::__introsort_loop(v.begin(), v.end(), depth, c);
      std::__final_insertion_sort(v.begin(), v.end(), c);
    }
    for (size_t i = 0; i < n; ++i) std::printf(i ? " %ld" : "%ld", v[i].second);
    std::printf("\n");
  }
}
