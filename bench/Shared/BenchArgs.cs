using System.Globalization;

namespace Identity.Bench;

/// <summary>
/// The bench apps' command lines: <c>--name value</c> pairs. Shared by the bench apps: each project links this file.
/// Every failure is an <see cref="ArgumentException"/> with a readable message (empty for <c>--help</c>).
/// </summary>
public static class BenchArgs
{
    /// <summary>Calls <paramref name="set"/> with each name and its value, in order.</summary>
    public static void Parse(IReadOnlyList<string> args, Action<string, string> set)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (name is "-h" or "--help")
            {
                throw new ArgumentException("");
            }

            if (i + 1 >= args.Count)
            {
                throw new ArgumentException($"{name} needs a value");
            }

            set(name, args[++i]);
        }
    }

    public static Uri AbsoluteUri(string name, string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) ? uri : throw new ArgumentException($"{name}: '{value}' is not an absolute URL");

    public static double Number(string name, string value, double min, double max) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new ArgumentException($"{name}: '{value}' is not a number in [{min}, {max}]");

    /// <summary>
    /// Parses the options with <paramref name="parse"/>; on a bad command line prints the message and
    /// <paramref name="usage"/> to stderr and returns null (the caller exits with 2).
    /// </summary>
    public static T? TryParse<T>(string app, IReadOnlyList<string> args, Func<IReadOnlyList<string>, T> parse, string usage)
        where T : class
    {
        try
        {
            return parse(args);
        }
        catch (ArgumentException ex)
        {
            if (ex.Message.Length > 0)
            {
                Console.Error.WriteLine($"{app}: {ex.Message}");
            }

            Console.Error.WriteLine(usage);
            return null;
        }
    }
}
