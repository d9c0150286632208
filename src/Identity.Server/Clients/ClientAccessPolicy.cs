using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Identity.Core.Policies;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Server.Clients;

/// <summary>A client's token-endpoint budget as declared (<c>Oidc:Clients:N:TokenRateLimit</c>): permits per window.</summary>
public sealed class TokenRateLimitDefinition
{
    public int Permits { get; set; }

    public TimeSpan Window { get; set; }
}

/// <summary>A problem with a declared access policy: the field (PascalCase, as in configuration), the list index if any.</summary>
public sealed record AccessPolicyProblem(string Field, int? Index, string Message);

/// <summary>
/// Where a client may call from and how often it may get tokens (issue 16, item 4): an IP allow-list of CIDR ranges,
/// IPv4 and IPv6, checked at the token, introspection and revocation endpoints, and a rate limit at the token
/// endpoint. Stored in the OpenIddict application's properties (<see cref="Property"/>), so it travels with the
/// cached client (<see cref="Connect.Replacements.ClientApplicationManager"/>) and costs no query per request.
/// </summary>
public sealed class ClientAccessPolicy
{
    public const string Property = "identity_access_policy";

    /// <summary>As many ranges as an account's allow-list may hold.</summary>
    public const int MaxRanges = 100;

    public const int MaxPermits = 1_000_000;

    public static readonly TimeSpan MinWindow = TimeSpan.FromSeconds(1);

    public static readonly TimeSpan MaxWindow = TimeSpan.FromHours(1);

    /// <summary>No allow-list, no limit: what a client without the property gets.</summary>
    public static readonly ClientAccessPolicy None = new([], [], null, broken: false);

    // Parsed once per stored properties text: the cached client's copies share that string, and a changed client
    // comes with a new one (weak keys: an entry goes when no copy of the client holds its text any more).
    private static readonly ConditionalWeakTable<string, ClientAccessPolicy> Parsed = new();

    private readonly IPNetwork[] _networks;
    private readonly bool _broken;

    private ClientAccessPolicy(IReadOnlyList<string> ranges, IPNetwork[] networks, TokenRateLimitDefinition? limit, bool broken)
    {
        AllowedIpRanges = ranges;
        _networks = networks;
        TokenRateLimit = limit;
        _broken = broken;
    }

    /// <summary>CIDR ranges the client may call from; empty: anywhere.</summary>
    public IReadOnlyList<string> AllowedIpRanges { get; }

    public TokenRateLimitDefinition? TokenRateLimit { get; }

    /// <summary>
    /// Whether a call from <paramref name="address"/> is allowed. An IPv4-mapped IPv6 address (a dual-stack socket's
    /// view of an IPv4 peer) is matched as the IPv4 address it carries. A stored policy that cannot be read (written
    /// around the API) allows nobody: fail closed.
    /// </summary>
    public bool Allows(IPAddress? address) => !_broken && IpRanges.AllowsParsed(_networks, address);

    /// <summary>The declared policy, or <c>null</c> when the client declares neither an allow-list nor a limit.</summary>
    public static ClientAccessPolicy? From(ClientDefinition definition)
    {
        if (definition.AllowedIpRanges.Count == 0 && definition.TokenRateLimit is null)
        {
            return null;
        }

        var networks = new IPNetwork[definition.AllowedIpRanges.Count];
        var broken = false;
        for (var i = 0; i < networks.Length; i++)
        {
            broken |= !IpRanges.TryParseRange(definition.AllowedIpRanges[i], out networks[i], out _);
        }

        return new ClientAccessPolicy([.. definition.AllowedIpRanges], networks, definition.TokenRateLimit, broken);
    }

    /// <summary>
    /// What is wrong with the declared allow-list and limit. A limit needs a confidential client: a public client's
    /// id is no secret, so anyone could spend its budget and lock it out.
    /// </summary>
    public static IEnumerable<AccessPolicyProblem> Problems(IReadOnlyList<string> ranges, TokenRateLimitDefinition? limit, bool confidential)
    {
        if (ranges.Count > MaxRanges)
        {
            yield return new("AllowedIpRanges", null, $"At most {MaxRanges} ranges.");
        }

        for (var i = 0; i < Math.Min(ranges.Count, MaxRanges); i++)
        {
            if (ranges[i] is null)
            {
                yield return new("AllowedIpRanges", i, "Must be a CIDR range as a string, such as \"10.0.0.0/8\".");
            }
            else if (!IpRanges.TryParseRange(ranges[i], out _, out var problem))
            {
                yield return new("AllowedIpRanges", i, problem);
            }
        }

        if (limit is null)
        {
            yield break;
        }

        if (limit.Permits is < 1 or > MaxPermits)
        {
            yield return new("TokenRateLimit.Permits", null, $"From 1 to {MaxPermits}.");
        }

        if (limit.Window < MinWindow || limit.Window > MaxWindow)
        {
            yield return new("TokenRateLimit.Window", null, $"A duration (hh:mm:ss) from {MinWindow:c} to {MaxWindow:c}.");
        }

        if (!confidential)
        {
            yield return new("TokenRateLimit", null,
                "Only a confidential client may have a token rate limit: a public client's id is no secret, so anyone could spend its budget.");
        }
    }

    /// <summary>The stored form: <c>{"allowedIpRanges":[...],"tokenRateLimit":{"permits":10,"window":"00:01:00"}}</c>.</summary>
    public JsonElement ToJson() => JsonSerializer.SerializeToElement(new Dictionary<string, object?>
    {
        ["allowedIpRanges"] = AllowedIpRanges,
        ["tokenRateLimit"] = TokenRateLimit is { } limit
            ? new Dictionary<string, object> { ["permits"] = limit.Permits, ["window"] = limit.Window.ToString("c", CultureInfo.InvariantCulture) }
            : null,
    });

    /// <summary>The policy of a (cached) application row, parsed once per version of its properties.</summary>
    public static ClientAccessPolicy Of(OpenIddictEntityFrameworkCoreApplication application)
    {
        ArgumentNullException.ThrowIfNull(application);
        return application.Properties is { Length: > 0 } properties ? Parsed.GetValue(properties, Parse) : None;
    }

    /// <summary>The policy in a descriptor's or an application's properties.</summary>
    public static ClientAccessPolicy Of(IReadOnlyDictionary<string, JsonElement> properties) =>
        properties.TryGetValue(Property, out var stored) ? Read(stored) : None;

    private static ClientAccessPolicy Parse(string properties)
    {
        try
        {
            using var document = JsonDocument.Parse(properties);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty(Property, out var stored)
                ? Read(stored)
                : None;
        }
        catch (JsonException)
        {
            return new([], [], null, broken: true);
        }
    }

    private static ClientAccessPolicy Read(JsonElement stored)
    {
        try
        {
            var ranges = stored.TryGetProperty("allowedIpRanges", out var list) && list.ValueKind == JsonValueKind.Array
                ? list.EnumerateArray().Select(r => r.GetString() ?? "").ToList()
                : [];
            TokenRateLimitDefinition? limit = null;
            if (stored.TryGetProperty("tokenRateLimit", out var rate) && rate.ValueKind == JsonValueKind.Object)
            {
                limit = new TokenRateLimitDefinition
                {
                    Permits = rate.GetProperty("permits").GetInt32(),
                    Window = TimeSpan.ParseExact(rate.GetProperty("window").GetString()!, "c", CultureInfo.InvariantCulture),
                };
            }

            return Problems(ranges, limit, confidential: true).Any()
                ? new([], [], null, broken: true)
                : From(new ClientDefinition { AllowedIpRanges = ranges, TokenRateLimit = limit }) ?? None;
        }
        catch (Exception ex) when (ex is InvalidOperationException or KeyNotFoundException or FormatException or OverflowException)
        {
            return new([], [], null, broken: true);
        }
    }
}
