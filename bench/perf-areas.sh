#!/usr/bin/env bash
# Where a .NET server's CPU goes, by area: reads a `perf record -g` file of a process run with DOTNET_PerfMapEnabled=1
# (bench/authcode-bench.sh PROFILE=1 records one) and prints one line per area with its samples and share.
#
#   bench/perf-areas.sh PERF_DATA [TOP]
#
# Each sample goes to ONE area, decided by its innermost frame that belongs to a known area (frames of the base
# library, the runtime and the kernel are passed over, up to the first that does): a Dictionary lookup inside OpenIddict
# counts as OpenIddict, a socket write inside Npgsql as SQL. The innermost frame matters because an awaited call that
# completes runs its caller's continuation on top of its own frames (everything after a query sits above Npgsql's
# frames). Crypto is refined by what called it (data protection, a token signature, or other), and the threads of the
# runtime itself (server GC, tiered compilation) are their own areas: libcoreclr has no symbols here. Samples with no
# known frame fall back to kernel / runtime / base library. Then the TOP (25) leaf symbols, as
# `perf report --no-children --sort symbol` shows them.
set -euo pipefail
data=${1:?usage: bench/perf-areas.sh PERF_DATA [TOP]}
top=${2:-25}

perf script -i "$data" -F comm,ip,sym,dso 2>/dev/null | awk '
BEGIN {
  n = 0
  # area | regular expression over one frame ("symbol (dso)"); the first rule a frame matches names its area.
  rule("cookie + data protection (AES/HMAC, key ring)", "Microsoft[.]AspNetCore[.]DataProtection")
  rule("JWT building and reading (IdentityModel, not the signature)", "Microsoft[.]IdentityModel")
  rule("SQL: Npgsql (protocol, reading, writing)", "Npgsql")
  rule("SQL: EF Core (queries, change tracking, materialising)", "Microsoft[.]EntityFrameworkCore")
  rule("logging", "Microsoft[.]Extensions[.]Logging|LoggerMessage|OpenTelemetry")
  rule("JSON", "System[.]Text[.]Json")
  rule("crypto", "libcrypto|System[.]Security[.]Cryptography")
  rule("OpenIddict pipeline", "OpenIddict")
  rule("Razor / MVC page pipeline", "Microsoft[.]AspNetCore[.](Mvc|Razor)|AspNetCoreGeneratedDocument|Microsoft[.]AspNetCore[.]Antiforgery")
  rule("authentication handlers, ASP.NET Core Identity, claims", "Microsoft[.]AspNetCore[.](Authentication|Authorization|Identity)|Microsoft[.]Extensions[.]Identity|System[.]Security[.]Claims")
  rule("project code (Identity.*)", "(^|[^.A-Za-z])Identity[.](Server|Core|Propagation|Store|Contracts)")
  rule("Kestrel / HTTP / routing / middleware", "Kestrel|Microsoft[.]AspNetCore[.](Server|Http|Routing|HostFiltering|ResponseCompression|Hosting|Builder|StaticFiles|WebUtilities|HttpOverrides|Diagnostics|RateLimiting)|System[.]Net[.]|System[.]IO[.]Pipelines")
  rule("dependency injection, options, configuration", "Microsoft[.]Extensions[.](DependencyInjection|Options|Configuration|Primitives|Caching)")
}
function rule(area, re) { n++; areas[n] = area; res[n] = re }
/^[[:space:]]*$/ { if (depth > 0) classify(); depth = 0; next }
# A sample begins with its thread name (comm), then its frames, innermost first.
/^[^[:space:]]/ { thread = $0; depth = 0; next }
{ line = $0; sub(/^[[:space:]]+[0-9a-f]+[[:space:]]+/, "", line); frames[++depth] = line }
function classify(   i, j, k, a, leaf, rest) {
  total++
  a = ""
  if (thread ~ /^[.]NET (Server GC|BGC|Background GC)/) a = "GC"
  else if (thread ~ /^[.]NET Tiered Com/) a = "JIT and tiering"
  for (i = 1; a == "" && i <= depth; i++) {
    if (frames[i] ~ /libclrjit/) { a = "JIT and tiering"; break }
    for (k = 1; k <= n; k++) if (frames[i] ~ res[k]) { a = areas[k]; break }
  }
  if (a == "crypto") {
    # Who asked for it: the innermost caller that is data protection or IdentityModel. libcrypto keeps no frame
    # pointers, so a sample inside it often has no caller at all: those are counted apart.
    a = "crypto in OpenSSL, caller not unwound (signatures, code encryption, cookie, hashes)"
    for (j = i + 1; j <= depth; j++) {
      if (frames[j] ~ /perf-[0-9]+[.]map|[.]dll[)]/ && a ~ /not unwound/) a = "other crypto (SHA-256, HMAC, random: PKCE, client secrets, hashes)"
      if (frames[j] ~ res[1]) { a = areas[1]; break }
      if (frames[j] ~ res[2]) { a = "token signatures and encryption (IdentityModel: ES256, RS256, A256KW)"; break }
    }
  }
  if (a == "") {
    if (frames[1] ~ /kallsyms/) a = "kernel (scheduling, page faults, network outside the above)"
    else if (frames[1] ~ /libcoreclr|libclrgc|libc[.]so|libstdc/) a = "runtime (CoreCLR: allocation, casting, stubs, locks)"
    else a = "base library (collections, strings, tasks) outside the above"
  }
  count[a]++
  leaf = frames[1]; sub(/\+0x[0-9a-f]+/, "", leaf)
  leaves[leaf]++
}
END {
  if (depth > 0) classify()
  if (total == 0) { print "no samples"; exit 1 }
  printf "samples=%d\n", total
  for (a in count) printf "%6.1f %%  %7d  %s\n", count[a] * 100 / total, count[a], a | "sort -rn"
  close("sort -rn")
  print "--- leaf symbols (self) ---"
  for (l in leaves) printf "%6.2f %%  %s\n", leaves[l] * 100 / total, l | "sort -rn | head -n '"$top"'"
}'
