using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using Identity.Core.Propagation;

namespace Identity.Propagation;

/// <summary>Reads a row back into its contract, as the writer (<see cref="OutboxEvents"/>) serialized it.</summary>
public static class OutboxRowReader
{
    /// <summary>
    /// The row's message and its contract type; or why it cannot be read (a <see cref="ParkReasons"/> code and an error
    /// that names the row and where its JSON breaks, never the payload's content: it holds personal data).
    /// </summary>
    public static bool TryRead(OutboxMessage row, [NotNullWhen(true)] out object? message, [NotNullWhen(true)] out Type? type,
        [NotNullWhen(false)] out string? reason, [NotNullWhen(false)] out string? error)
    {
        message = null;
        reason = null;
        error = null;
        if (!OutboxEvents.Types.TryGetValue(row.MessageType, out type))
        {
            (reason, error) = (ParkReasons.UnknownType, $"Outbox row {row.Id} has the unknown message type '{Shorten(row.MessageType)}'.");
            return false;
        }

        try
        {
            message = JsonSerializer.Deserialize(row.Payload, type, OutboxEvents.JsonOptions);
        }
        catch (JsonException e)
        {
            (reason, error) = (ParkReasons.UnreadablePayload,
                $"Outbox row {row.Id} is not a readable {type.Name}: JSON error at {e.Path ?? "$"}, line {e.LineNumber}, byte {e.BytePositionInLine}.");
            type = null;
            return false;
        }

        if (message is null)
        {
            (reason, error) = (ParkReasons.UnreadablePayload, $"Outbox row {row.Id} has an empty payload.");
            type = null;
            return false;
        }

        return true;
    }

    private static string Shorten(string value) => value.Length <= 100 ? value : value[..100];
}
