using System.Buffers.Text;
using System.Text.Json;

namespace Identity.Server.AdminConsole;

/// <summary>One field shown before and after a change: a preview, or what someone else changed meanwhile.</summary>
public sealed record FieldChange(string Field, string Before, string After);

/// <summary>
/// <c>If-Match</c> for forms (RFC 9110 §13.1.1, as the admin API): an edit form carries, in hidden fields, the version it
/// was read at (<see cref="VersionField"/>) and the values it showed (<see cref="SnapshotField"/>, a description of the
/// resource as label → text). A save whose version is no longer the resource's is refused; the page then shows
/// <see cref="Differences"/> between the snapshot and what the resource is now (<c>_StaleNotice</c>) and starts again
/// from the current values.
/// </summary>
/// <remarks>
/// The snapshot only says what the form had shown: altering it changes what a refusal displays, never what is saved.
/// The operation itself checks the version again in its transaction (the concurrency token), so two saves racing past
/// the page's check are still one winner and one refusal.
/// </remarks>
public static class FormVersion
{
    public const string VersionField = "Version";

    public const string SnapshotField = "Snapshot";

    /// <summary>The fields whose text differs, in the order of <paramref name="after"/> (then those only in <paramref name="before"/>).</summary>
    public static IReadOnlyList<FieldChange> Differences(IReadOnlyList<KeyValuePair<string, string>> before,
        IReadOnlyList<KeyValuePair<string, string>> after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        var was = before.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        var now = after.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        var changes = after
            .Where(p => !was.TryGetValue(p.Key, out var old) || old != p.Value)
            .Select(p => new FieldChange(p.Key, was.GetValueOrDefault(p.Key, "—"), p.Value))
            .ToList();
        changes.AddRange(before.Where(p => !now.ContainsKey(p.Key)).Select(p => new FieldChange(p.Key, p.Value, "—")));
        return changes;
    }

    /// <summary>The snapshot as a hidden field's value (base64url JSON).</summary>
    public static string Encode(IReadOnlyList<KeyValuePair<string, string>> snapshot) =>
        Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(snapshot.Select(p => new[] { p.Key, p.Value })));

    /// <summary>The snapshot a form sent back; empty when it is missing or malformed (the refusal then lists every field as new).</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Decode(string? encoded)
    {
        if (string.IsNullOrEmpty(encoded))
        {
            return [];
        }

        try
        {
            var pairs = JsonSerializer.Deserialize<string[][]>(Base64Url.DecodeFromChars(encoded)) ?? [];
            return [.. pairs.Where(p => p is { Length: 2 }).Select(p => new KeyValuePair<string, string>(p[0], p[1]))];
        }
        catch (Exception ex) when (ex is FormatException or JsonException)
        {
            return [];
        }
    }

    /// <summary>Text for a description: the console shows values the same way everywhere.</summary>
    public static string Text(bool value) => value ? "yes" : "no";

    public static string Text(TimeSpan? value, string none = "never") =>
        value is { } v ? v.ToString("c", System.Globalization.CultureInfo.InvariantCulture) : none;

    public static string Text(IEnumerable<string> values, string none = "none") =>
        string.Join(", ", values) is { Length: > 0 } joined ? joined : none;
}

/// <summary>A refused stale save: what someone else changed (snapshot → now), and what the refused form would have changed.</summary>
public sealed record StaleEdit(IReadOnlyList<FieldChange> Theirs, IReadOnlyList<FieldChange> Yours);

/// <summary>The messages beside one field (<c>_FieldErrors</c>): the element <c>err-{Id}</c> the input names in <c>aria-describedby</c>.</summary>
public sealed record FieldErrors(string Id, IReadOnlyList<string> Messages)
{
    public bool Any => Messages.Count > 0;

    /// <summary>The input's <c>aria-describedby</c>: its hint, and its errors when it has some.</summary>
    public string DescribedBy(string? hintId = null) => string.Join(' ', new[] { hintId, Any ? "err-" + Id : null }.OfType<string>());
}

/// <summary>A typed confirmation's field (<c>_TypedConfirmation</c>): the text to type, what was typed, and its messages.</summary>
public sealed record TypedConfirmation(string Expected, string? Typed, FieldErrors Errors);
