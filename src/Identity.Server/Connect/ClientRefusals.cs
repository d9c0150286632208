using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Identity.Core.Audit;
using Identity.Core.Data;
using OpenIddict.Server;

namespace Identity.Server.Connect;

/// <summary>
/// The one writer of every refusal of a client at the endpoints it calls itself (token, introspection, revocation):
/// the counter and the audit row of each, whichever handler refused.
/// <list type="bullet">
/// <item>Its access policy (<see cref="EnforceClientAccessPolicy"/>, decision 0049): meter <c>Identity.ClientAccess</c>,
/// <c>identity.client_access.refusals</c> tagged <c>reason</c> and <c>endpoint</c>; audited as
/// <c>client.access_refused</c>. An address refusal is one row each, as a wrong secret is; rate-limit refusals come in
/// floods (a client retrying in a loop), so they get at most one row per client per minute on each replica, carrying
/// how many were refused since the previous row.</item>
/// <item>Its certificate authentication (RFC 8705, <see cref="CertificateRefusal"/> names the reasons, decision 0046):
/// meter <c>Identity.Server</c>, <c>identity.mtls.client_auth.refusals</c> tagged <c>reason</c> and <c>endpoint</c>;
/// audited as the <c>token.failed</c> row every refused token request gets, with <c>certificateRefused</c> and
/// <c>endpoint</c>, at introspection and revocation too (decision 0068).</item>
/// </list>
/// A recorded refusal marks its transaction (<see cref="RecordedProperty"/>) so that
/// <see cref="Audit.TokenFailureAudit"/> does not write a second row for it.
/// </summary>
public sealed class ClientRefusals
{
    public const string AccessMeterName = "Identity.ClientAccess";
    public const string AccessRefusalsCounter = "identity.client_access.refusals";
    public const string CertificateMeterName = "Identity.Server";
    public const string CertificateRefusalsCounter = "identity.mtls.client_auth.refusals";
    public const string AddressNotAllowed = "ip_not_allowed";
    public const string RateLimited = "rate_limited";

    /// <summary>Set on a transaction whose refusal is counted and audited here.</summary>
    public const string RecordedProperty = ".identity_client_refusal_recorded";

    private static readonly TimeSpan RateLimitedRowEvery = TimeSpan.FromMinutes(1);

    private readonly Counter<long> _accessRefusals;
    private readonly Counter<long> _certificateRefusals;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, RowThrottle> _rateLimitedRows = new(StringComparer.Ordinal);

    public ClientRefusals(IMeterFactory meters, TimeProvider time)
    {
        _time = time;
        _accessRefusals = meters.Create(AccessMeterName).CreateCounter<long>(AccessRefusalsCounter, "{request}",
            "Requests refused by a client's IP allow-list or token rate limit.");
        _certificateRefusals = meters.Create(CertificateMeterName).CreateCounter<long>(CertificateRefusalsCounter, "{refusal}",
            "Token requests refused for their client certificate (RFC 8705).");
    }

    /// <summary>The access refusals start at 0 on the token endpoint (once exporters listen), so that rates and alerts see them.</summary>
    public void StartSeries()
    {
        var token = new KeyValuePair<string, object?>("endpoint", EndpointName(OpenIddictServerEndpointType.Token));
        _accessRefusals.Add(0, new KeyValuePair<string, object?>("reason", AddressNotAllowed), token);
        _accessRefusals.Add(0, new KeyValuePair<string, object?>("reason", RateLimited), token);
    }

    /// <summary>A request refused by the client's access policy (<see cref="AddressNotAllowed"/>, <see cref="RateLimited"/>).</summary>
    public async Task AccessRefusedAsync(OpenIddictServerTransaction transaction, HttpContext http, string clientId, string reason,
        string endpoint, object? details = null)
    {
        transaction.Properties[RecordedProperty] = true;
        _accessRefusals.Add(1, new KeyValuePair<string, object?>("reason", reason), new KeyValuePair<string, object?>("endpoint", endpoint));

        long refused = 1;
        if (reason == RateLimited
            && !_rateLimitedRows.GetOrAdd(clientId, _ => new RowThrottle()).TakeRow(_time.GetUtcNow(), RateLimitedRowEvery, out refused))
        {
            return;
        }

        await WriteAsync(http, clientId, "client.access_refused", new { reason, endpoint, refused, details });
    }

    /// <summary>
    /// A request to the token, introspection or revocation endpoint (<paramref name="endpoint"/>, <see cref="EndpointName"/>)
    /// refused for its client certificate or its authentication method (<see cref="CertificateRefusal"/>).
    /// </summary>
    public async Task CertificateRefusedAsync(OpenIddictServerTransaction transaction, HttpContext? http, string? clientId, string reason,
        string? error, string? grantType, string endpoint)
    {
        transaction.Properties[RecordedProperty] = true;
        _certificateRefusals.Add(1, new KeyValuePair<string, object?>("reason", reason), new KeyValuePair<string, object?>("endpoint", endpoint));
        await WriteAsync(http, clientId, "token.failed", new { error, grantType, certificateRefused = reason, endpoint });
    }

    /// <summary>The <c>endpoint</c> of the counters' tags and the audit rows: token, introspection, revocation.</summary>
    public static string EndpointName(OpenIddictServerEndpointType endpoint) => endpoint switch
    {
        OpenIddictServerEndpointType.Token => "token",
        OpenIddictServerEndpointType.Introspection => "introspection",
        OpenIddictServerEndpointType.Revocation => "revocation",
        _ => endpoint.ToString().ToLowerInvariant(),
    };

    private static async Task WriteAsync(HttpContext? http, string? clientId, string eventType, object details)
    {
        if (http is null)
        {
            return;
        }

        http.RequestServices.GetRequiredService<IAuditTrail>().Record(
            new Actor("client", clientId, clientId, http.Connection.RemoteIpAddress?.ToString()), eventType,
            clientId is null ? null : "client", clientId, null, details);
        await http.RequestServices.GetRequiredService<AuthorityDbContext>().SaveChangesAsync(http.RequestAborted);
    }
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
