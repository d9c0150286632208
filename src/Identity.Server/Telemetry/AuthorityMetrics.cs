using System.Diagnostics.Metrics;
using Identity.Server.Keys;
using Microsoft.Extensions.Options;

namespace Identity.Server.Telemetry;

/// <summary>
/// Meter <c>Identity.Server</c>: what an operator of the authority watches (decision 0071). Counters take few tags from
/// small fixed sets (a grant type, an RFC 6749 error code, a result, a factor) and a client id only once the client is
/// authenticated, so no request can mint a new series; the token path adds one counter increment per request.
/// <list type="bullet">
/// <item><c>identity.tokens.issued</c> (<c>grant_type</c>, <c>client_id</c>), <c>identity.token.errors</c> (<c>error</c>).</item>
/// <item><c>identity.sign_ins</c> (<c>result</c>: succeeded, failed, locked_out), <c>identity.lockouts</c>,
/// <c>identity.mfa.challenges</c> (<c>factor</c>: totp, recovery_code, passkey; <c>result</c>).</item>
/// <item><c>identity.throttled</c> (<c>endpoint</c>: sign_in, token, password_reset): requests refused by the per-address limits.</item>
/// <item><c>identity.keys.active_age</c> and <c>identity.keys.next_rotation</c> (s, <c>algorithm</c>): how long the signing
/// key has signed, and how long until the next one takes over (negative: overdue).</item>
/// <item><c>identity.certificates.expiry</c> (s, <c>certificate</c>: mtls_server, data_protection).</item>
/// </list>
/// </summary>
public sealed class AuthorityMetrics
{
    public const string MeterName = "Identity.Server";

    private readonly Counter<long> _tokensIssued;
    private readonly Counter<long> _tokenErrors;
    private readonly Counter<long> _signIns;
    private readonly Counter<long> _lockouts;
    private readonly Counter<long> _mfaChallenges;
    private readonly Counter<long> _throttled;

    public AuthorityMetrics(IMeterFactory meters, SigningKeyRing ring, IOptions<KeyRotationOptions> rotation, TimeProvider time, IConfiguration configuration)
    {
        var meter = meters.Create(MeterName);
        _tokensIssued = meter.CreateCounter<long>("identity.tokens.issued", "{token}", "Token responses issued, by grant type and client.");
        _tokenErrors = meter.CreateCounter<long>("identity.token.errors", "{response}", "Token requests refused, by RFC 6749 error code.");
        _signIns = meter.CreateCounter<long>("identity.sign_ins", "{attempt}", "Interactive sign-ins, by result.");
        _lockouts = meter.CreateCounter<long>("identity.lockouts", "{lockout}", "Sign-ins refused because the user is locked out.");
        _mfaChallenges = meter.CreateCounter<long>("identity.mfa.challenges", "{challenge}", "Second-factor checks, by factor and result.");
        _throttled = meter.CreateCounter<long>("identity.throttled", "{request}", "Requests refused by the per-address throttle.");
        meter.CreateObservableGauge("identity.keys.active_age", () => ActiveKeys(ring).Select(k =>
            new Measurement<double>((time.GetUtcNow() - k.ActivatesAt).TotalSeconds, Algorithm(k))), "s",
            "How long each algorithm's signing key has been signing.");
        meter.CreateObservableGauge("identity.keys.next_rotation", () => ActiveKeys(ring).Select(k =>
            new Measurement<double>(NextRotation(ring, k, rotation.Value, time.GetUtcNow()), Algorithm(k))), "s",
            "Seconds until the next key of each algorithm signs (negative: rotation overdue).");
        var certificates = ConfiguredCertificates(configuration);
        meter.CreateObservableGauge("identity.certificates.expiry", () => certificates.Select(c =>
            new Measurement<double>((c.NotAfter - time.GetUtcNow()).TotalSeconds, new KeyValuePair<string, object?>("certificate", c.Name))), "s",
            "Seconds until each certificate the server was started with expires (negative: expired).");
    }

    /// <summary>The certificates read at start (the mTLS port's, the key ring's): replacing one takes a restart.</summary>
    private static List<(string Name, DateTimeOffset NotAfter)> ConfiguredCertificates(IConfiguration configuration)
    {
        var found = new List<(string, DateTimeOffset)>();
        foreach (var (name, key) in (ReadOnlySpan<(string, string)>)[("mtls_server", "Mtls:CertificateFile"), ("data_protection", "DataProtection:CertificateFile")])
        {
            if (configuration[key] is { Length: > 0 } file && File.Exists(file))
            {
                try
                {
                    using var certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(file);
                    found.Add((name, new DateTimeOffset(certificate.NotAfter.ToUniversalTime())));
                }
                catch (System.Security.Cryptography.CryptographicException)
                {
                    // The concern that uses the file refuses to start and says why.
                }
            }
        }

        return found;
    }

    /// <summary>
    /// Every series with a fixed tag set starts at 0, so that a rate or an alert sees it before its first event. Called
    /// once the exporters listen (<see cref="MetricSeriesStart"/>): a measurement taken before is not seen.
    /// </summary>
    public void StartSeries()
    {
        foreach (var result in (string[])["succeeded", "failed", "locked_out"])
        {
            _signIns.Add(0, new KeyValuePair<string, object?>("result", result));
        }

        foreach (var factor in (string[])["totp", "recovery_code", "passkey"])
        {
            _mfaChallenges.Add(0, new KeyValuePair<string, object?>("factor", factor), new KeyValuePair<string, object?>("result", "succeeded"));
            _mfaChallenges.Add(0, new KeyValuePair<string, object?>("factor", factor), new KeyValuePair<string, object?>("result", "failed"));
        }

        _lockouts.Add(0);
        _throttled.Add(0, new KeyValuePair<string, object?>("endpoint", "sign_in"));
        _throttled.Add(0, new KeyValuePair<string, object?>("endpoint", "token"));
        _throttled.Add(0, new KeyValuePair<string, object?>("endpoint", "password_reset"));
        _tokenErrors.Add(0, new KeyValuePair<string, object?>("error", "invalid_grant"));
        _tokenErrors.Add(0, new KeyValuePair<string, object?>("error", "invalid_client"));
    }

    public void TokenIssued(string? grantType, string? clientId) =>
        _tokensIssued.Add(1, new KeyValuePair<string, object?>("grant_type", grantType), new KeyValuePair<string, object?>("client_id", clientId));

    public void TokenRefused(string error) => _tokenErrors.Add(1, new KeyValuePair<string, object?>("error", error));

    public void SignIn(string result) => _signIns.Add(1, new KeyValuePair<string, object?>("result", result));

    public void LockedOut() => _lockouts.Add(1);

    public void MfaChallenge(string factor, bool succeeded) =>
        _mfaChallenges.Add(1, new KeyValuePair<string, object?>("factor", factor),
            new KeyValuePair<string, object?>("result", succeeded ? "succeeded" : "failed"));

    public void Throttled(string endpoint) => _throttled.Add(1, new KeyValuePair<string, object?>("endpoint", endpoint));

    private static IEnumerable<RingKey> ActiveKeys(SigningKeyRing ring)
    {
        try
        {
            return ring.Stages.Where(s => s.Stage == KeySchedule.Active && s.Key.Signing is not null).Select(s => s.Key).ToList();
        }
        catch (InvalidOperationException)
        {
            return []; // the ring is not loaded yet (the store initialises at start)
        }
    }

    private static double NextRotation(SigningKeyRing ring, RingKey active, KeyRotationOptions rotation, DateTimeOffset now) =>
        (KeySchedule.NextRotation(ring.Stages, active, rotation.RotationPeriod) - now).TotalSeconds;

    private static KeyValuePair<string, object?> Algorithm(RingKey key) => new("algorithm", key.Algorithm);
}
