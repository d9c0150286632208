using System.Collections.Frozen;

namespace Identity.Core.Policies;

/// <summary>
/// The ~10,000 most common passwords (<c>common-passwords.txt</c>, embedded), loaded once, compared case-insensitively:
/// "PASSWORD" and "Password" are as guessable as "password".
/// </summary>
public static class CommonPasswords
{
    private const string ResourceName = "Identity.Core.Policies.common-passwords.txt";

    private static readonly FrozenSet<string> Passwords = Load();

    public static int Count => Passwords.Count;

    public static bool Contains(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        return Passwords.Contains(password);
    }

    private static FrozenSet<string> Load()
    {
        using var stream = typeof(CommonPasswords).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded resource '{ResourceName}' is missing.");
        using var reader = new StreamReader(stream);
        var passwords = new List<string>(10_000);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length > 0 && !line.StartsWith('#'))
            {
                passwords.Add(line);
            }
        }

        return passwords.ToFrozenSet(StringComparer.OrdinalIgnoreCase);
    }
}
