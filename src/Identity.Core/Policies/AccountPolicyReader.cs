using System.Globalization;
using System.Text.Json;

namespace Identity.Core.Policies;

/// <summary>
/// Reads a settings document field by field, so that every error is reported at its JSON path. Strict on purpose:
/// an unknown or misspelt property is an error, not silently ignored, since a typo in a security policy would
/// otherwise leave the default in force without anyone noticing.
/// </summary>
internal sealed class AccountPolicyReader
{
    public const int MaxRanges = 100;

    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 16 };

    private readonly Dictionary<string, List<string>> errors = new(StringComparer.Ordinal);

    public Dictionary<string, string[]> Errors() => errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal);

    public AccountPolicy Read(string json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, DocumentOptions);
        }
        catch (JsonException ex)
        {
            Add("$", $"Not valid JSON: {ex.Message}");
            return AccountPolicy.Default;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                Add("$", "Must be a JSON object.");
                return AccountPolicy.Default;
            }

            var policy = AccountPolicy.Default;
            foreach (var (name, value, path) in Properties(root, prefix: null))
            {
                policy = name switch
                {
                    "mfa" => policy with { Mfa = ReadMfa(value, path) },
                    "password" => policy with { Password = ReadPassword(value, path) },
                    "lockout" => policy with { Lockout = ReadLockout(value, path) },
                    "session" => policy with { Session = ReadSession(value, path) },
                    "ipAllowList" => policy with { IpAllowList = ReadIpAllowList(value, path) },
                    _ => Unknown(policy, path),
                };
            }

            return policy;
        }
    }

    private MfaPolicy ReadMfa(JsonElement element, string path)
    {
        var mfa = new MfaPolicy();
        foreach (var (name, value, at) in Properties(element, path))
        {
            mfa = name switch
            {
                "requirement" => Enum<MfaRequirement>(value, at) is { } requirement ? mfa with { Requirement = requirement } : mfa,
                "allowedFactors" => ReadFactors(value, at) is { } factors ? mfa with { AllowedFactors = factors } : mfa,
                _ => Unknown(mfa, at),
            };
        }

        if (mfa.Requirement != MfaRequirement.Off && !HasErrors($"{path}.allowedFactors"))
        {
            if (mfa.AllowedFactors.Count == 0)
            {
                Add($"{path}.allowedFactors", "At least one factor is required unless the requirement is off.");
            }
            else if (mfa.AllowedFactors.All(f => f == MfaFactor.RecoveryCode))
            {
                Add($"{path}.allowedFactors", "Recovery codes are a fallback: allow totp or passkey as well.");
            }
        }

        return mfa;
    }

    private MfaFactor[]? ReadFactors(JsonElement element, string path)
    {
        if (element.ValueKind != JsonValueKind.Array)
        {
            Add(path, $"Must be an array of {Names<MfaFactor>()}.");
            return null;
        }

        var factors = new List<MfaFactor>();
        var index = 0;
        foreach (var item in element.EnumerateArray())
        {
            var at = $"{path}[{index++}]";
            if (Enum<MfaFactor>(item, at) is not { } factor)
            {
                continue;
            }

            if (factors.Contains(factor))
            {
                Add(at, "Listed twice.");
                continue;
            }

            factors.Add(factor);
        }

        return HasErrors(path, includeChildren: true) ? null : [.. factors];
    }

    private PasswordPolicy ReadPassword(JsonElement element, string path)
    {
        var password = new PasswordPolicy();
        foreach (var (name, value, at) in Properties(element, path))
        {
            password = name switch
            {
                "minimumLength" => Integer(value, at, 8, 128) is { } length ? password with { MinimumLength = length } : password,
                "rejectCommon" => Boolean(value, at) is { } reject ? password with { RejectCommon = reject } : password,
                "history" => Integer(value, at, 0, 24) is { } history ? password with { History = history } : password,
                "selfServiceReset" => Boolean(value, at) is { } reset ? password with { SelfServiceReset = reset } : password,
                "maximumAge" => value.ValueKind == JsonValueKind.Null ? password with { MaximumAge = null }
                    : Duration(value, at, TimeSpan.FromDays(1), TimeSpan.FromDays(3650), "1.00:00:00", "3650.00:00:00 (or null: never)") is { } age
                        ? password with { MaximumAge = age } : password,
                _ => Unknown(password, at),
            };
        }

        return password;
    }

    private LockoutPolicy ReadLockout(JsonElement element, string path)
    {
        var lockout = new LockoutPolicy();
        foreach (var (name, value, at) in Properties(element, path))
        {
            lockout = name switch
            {
                "maxFailedAttempts" => Integer(value, at, 3, 50) is { } attempts ? lockout with { MaxFailedAttempts = attempts } : lockout,
                "duration" => Duration(value, at, TimeSpan.FromMinutes(1), TimeSpan.FromDays(1), "00:01:00", "1.00:00:00") is { } duration
                    ? lockout with { Duration = duration } : lockout,
                _ => Unknown(lockout, at),
            };
        }

        return lockout;
    }

    private SessionPolicy ReadSession(JsonElement element, string path)
    {
        var session = new SessionPolicy();
        foreach (var (name, value, at) in Properties(element, path))
        {
            session = name switch
            {
                "lifetime" => Duration(value, at, TimeSpan.FromMinutes(5), TimeSpan.FromDays(30), "00:05:00", "30.00:00:00") is { } lifetime
                    ? session with { Lifetime = lifetime } : session,
                "idleTimeout" => Duration(value, at, TimeSpan.FromMinutes(1), TimeSpan.FromDays(30), "00:01:00", "30.00:00:00") is { } idle
                    ? session with { IdleTimeout = idle } : session,
                _ => Unknown(session, at),
            };
        }

        // Checked against the lifetime in force, which may be the default when only the idle timeout is given.
        if (session.IdleTimeout > session.Lifetime && !HasErrors($"{path}.lifetime") && !HasErrors($"{path}.idleTimeout"))
        {
            Add($"{path}.idleTimeout", $"Must not exceed {path}.lifetime ({session.Lifetime.ToString("c", CultureInfo.InvariantCulture)}).");
        }

        return session;
    }

    private IpAllowList ReadIpAllowList(JsonElement element, string path)
    {
        var list = new IpAllowList();
        foreach (var (name, value, at) in Properties(element, path))
        {
            list = name switch
            {
                "ranges" => ReadRanges(value, at) is { } ranges ? list with { Ranges = ranges } : list,
                _ => Unknown(list, at),
            };
        }

        return list;
    }

    private string[]? ReadRanges(JsonElement element, string path)
    {
        if (element.ValueKind != JsonValueKind.Array)
        {
            Add(path, "Must be an array of CIDR ranges, such as \"10.0.0.0/8\" or \"2001:db8::/32\".");
            return null;
        }

        if (element.GetArrayLength() > MaxRanges)
        {
            Add(path, $"At most {MaxRanges} ranges.");
            return null;
        }

        var ranges = new List<string>();
        var index = 0;
        foreach (var item in element.EnumerateArray())
        {
            var at = $"{path}[{index++}]";
            if (item.ValueKind != JsonValueKind.String)
            {
                Add(at, "Must be a CIDR range as a string, such as \"10.0.0.0/8\".");
            }
            else if (!IpRanges.TryParseRange(item.GetString()!, out _, out var problem))
            {
                Add(at, problem);
            }
            else
            {
                ranges.Add(item.GetString()!);
            }
        }

        return HasErrors(path, includeChildren: true) ? null : [.. ranges];
    }

    /// <summary>The properties of an object, each with its path; an error (and nothing) when it is not an object or repeats a name.</summary>
    private IEnumerable<(string Name, JsonElement Value, string Path)> Properties(JsonElement element, string? prefix)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            Add(prefix ?? "$", "Must be a JSON object.");
            yield break;
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            var path = prefix is null ? property.Name : $"{prefix}.{property.Name}";
            if (!seen.Add(property.Name))
            {
                Add(path, "Listed twice.");
                continue;
            }

            yield return (property.Name, property.Value, path);
        }
    }

    private T Unknown<T>(T unchanged, string path)
    {
        Add(path, "Unknown property.");
        return unchanged;
    }

    private int? Integer(JsonElement value, string path, int min, int max)
    {
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) && number >= min && number <= max)
        {
            return number;
        }

        Add(path, $"Must be an integer from {min} to {max}.");
        return null;
    }

    private bool? Boolean(JsonElement value, string path)
    {
        if (value.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            return value.GetBoolean();
        }

        Add(path, "Must be true or false.");
        return null;
    }

    /// <summary>
    /// A duration as <c>[d.]hh:mm[:ss]</c> (how <see cref="JsonSerializer"/> writes a TimeSpan). A bare number is
    /// refused: "90" would parse as 90 days, and nobody reading <c>"duration":"15"</c> should have to guess.
    /// </summary>
    private TimeSpan? Duration(JsonElement value, string path, TimeSpan min, TimeSpan max, string minText, string maxText)
    {
        if (value.ValueKind == JsonValueKind.String && value.GetString() is { } text && text.Contains(':', StringComparison.Ordinal)
            && TimeSpan.TryParseExact(text, "c", CultureInfo.InvariantCulture, out var duration))
        {
            if (duration >= min && duration <= max)
            {
                return duration;
            }

            Add(path, $"Must be from {minText} to {maxText}.");
            return null;
        }

        Add(path, "Must be a duration such as \"00:15:00\" (15 minutes) or \"90.00:00:00\" (90 days).");
        return null;
    }

    private TEnum? Enum<TEnum>(JsonElement value, string path) where TEnum : struct, Enum
    {
        if (value.ValueKind == JsonValueKind.String)
        {
            var text = value.GetString();
            foreach (var candidate in System.Enum.GetValues<TEnum>())
            {
                if (string.Equals(Name(candidate), text, StringComparison.Ordinal))
                {
                    return candidate;
                }
            }
        }

        Add(path, $"Must be one of {Names<TEnum>()}.");
        return null;
    }

    /// <summary>The JSON name of an enum value, as the serializer writes it (<c>requiredForAdmins</c>).</summary>
    private static string Name<TEnum>(TEnum value) where TEnum : struct, Enum => JsonNamingPolicy.CamelCase.ConvertName(value.ToString());

    private static string Names<TEnum>() where TEnum : struct, Enum => string.Join(", ", System.Enum.GetValues<TEnum>().Select(Name));

    private bool HasErrors(string path, bool includeChildren = false) =>
        errors.ContainsKey(path) || (includeChildren && errors.Keys.Any(k => k.StartsWith(path + "[", StringComparison.Ordinal)));

    private void Add(string path, string message)
    {
        if (!errors.TryGetValue(path, out var list))
        {
            errors[path] = list = [];
        }

        list.Add(message);
    }
}
