using Identity.Core.Audit;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Identity.Core.Data;
using Identity.Server.Audit;

namespace Identity.Server.Connect;

/// <summary>
/// Counts and audits the refusals of <see cref="EnforceClientAccessPolicy"/>: every one on the meter
/// <c>Identity.ClientAccess</c> (<c>identity.client_access.refusals</c>, tagged <c>reason</c> and <c>endpoint</c>), and
/// in the audit trail as <c>client.access_refused</c>. An address refusal is one row each, as a wrong secret is
/// (<c>token.failed</c>); rate-limit refusals come in floods (a client retrying in a loop), so they get at most one row
/// per client per minute on each replica, carrying how many were refused since the previous row.
/// </summary>
public sealed class ClientAccessRefusals : IDisposable
{
    public const string MeterName = "Identity.ClientAccess";
    public const string AddressNotAllowed = "ip_not_allowed";
    public const string RateLimited = "rate_limited";

    private static readonly TimeSpan RateLimitedRowEvery = TimeSpan.FromMinutes(1);

    private readonly Meter _meter;
    private readonly Counter<long> _refusals;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, RowThrottle> _rateLimitedRows = new(StringComparer.Ordinal);

    public ClientAccessRefusals(IMeterFactory meters, TimeProvider time)
    {
        _time = time;
        _meter = meters.Create(MeterName);
        _refusals = _meter.CreateCounter<long>("identity.client_access.refusals", "{request}",
            "Requests refused by a client's IP allow-list or token rate limit.");
    }

    public async Task RecordAsync(HttpContext http, string clientId, string reason, string endpoint, object? details = null)
    {
        _refusals.Add(1, new KeyValuePair<string, object?>("reason", reason), new KeyValuePair<string, object?>("endpoint", endpoint));

        long refused = 1;
        if (reason == RateLimited)
        {
            var throttle = _rateLimitedRows.GetOrAdd(clientId, _ => new RowThrottle());
            if (!throttle.TakeRow(_time.GetUtcNow(), RateLimitedRowEvery, out refused))
            {
                return;
            }
        }

        var audit = http.RequestServices.GetRequiredService<IAuditTrail>();
        audit.Record(new Actor("client", clientId, clientId, http.Connection.RemoteIpAddress?.ToString()), "client.access_refused",
            "client", clientId, null, new { reason, endpoint, refused, details });
        await http.RequestServices.GetRequiredService<AuthorityDbContext>().SaveChangesAsync(http.RequestAborted);
    }

    public void Dispose() => _meter.Dispose();

    /// <summary>Lets one row through per period and counts the refusals in between, which the next row reports.</summary>
    private sealed class RowThrottle
    {
        private readonly Lock _lock = new();
        private DateTimeOffset _lastRow = DateTimeOffset.MinValue;
        private long _since;

        public bool TakeRow(DateTimeOffset now, TimeSpan period, out long refused)
        {
            lock (_lock)
            {
                _since++;
                refused = _since;
                if (now - _lastRow < period && now >= _lastRow)
                {
                    return false;
                }

                _lastRow = now;
                _since = 0;
                return true;
            }
        }
    }
}
