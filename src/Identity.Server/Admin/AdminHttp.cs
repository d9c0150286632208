using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Identity.Core.Operations;
using Microsoft.Net.Http.Headers;

namespace Identity.Server.Admin;

/// <summary>What every admin route shares: strict JSON bodies, ETags, cursors and RFC 9457 problems.</summary>
public static class AdminHttp
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>The largest body any admin route accepts, declared or not (a client's JWKS is the largest legitimate one).</summary>
    public const int MaxBodyBytes = 64 * 1024;

    /// <summary>
    /// Reads a JSON body: wrong content type, malformed JSON, unknown or mistyped fields all give a 400 problem naming
    /// the field; a body over <see cref="MaxBodyBytes"/> a 413 problem, whether its length was declared or it came
    /// chunked. Nothing is written before the body is known to be well-formed.
    /// </summary>
    public static async Task<(T? Body, IResult? Problem)> ReadAsync<T>(HttpRequest request) where T : class
    {
        if (!request.HasJsonContentType())
        {
            return (null, Invalid("body", "The request body must be JSON (Content-Type: application/json)."));
        }

        var bytes = await ReadLimitedAsync(request);
        if (bytes is null)
        {
            return (null, TooLarge());
        }

        // RFC 8259 §8.1: JSON exchanged between systems is UTF-8. Checked up front, because System.Text.Json only notices
        // invalid bytes inside a string when the string is read, which for a JsonDocument is after this method returns.
        if (!Utf8.IsValid(bytes))
        {
            return (null, Invalid("body", "The request body is not valid UTF-8."));
        }

        T? body = null;
        try
        {
            body = JsonSerializer.Deserialize<T>(bytes, Json);
            if (body is JsonDocument document)
            {
                ReadEveryString(document.RootElement);
            }

            return body is null ? (null, Invalid("body", "The request body must be a JSON object.")) : (body, null);
        }
        catch (JsonException ex)
        {
            var field = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? "body" : ex.Path.TrimStart('$', '.');
            return (null, Invalid(field, "The value is malformed or of the wrong type."));
        }
        catch (InvalidOperationException)
        {
            // An escaped lone surrogate ("\ud800") is well-formed JSON that no string can hold (RFC 8259 §8.2).
            (body as IDisposable)?.Dispose();
            return (null, Invalid("body", "The request body holds a string that is not valid Unicode."));
        }
    }

    /// <summary>The body, or null when it is larger than <see cref="MaxBodyBytes"/>: reads one byte past the limit at most.</summary>
    private static async Task<byte[]?> ReadLimitedAsync(HttpRequest request)
    {
        if (request.ContentLength > MaxBodyBytes)
        {
            return null;
        }

        var buffer = new byte[(request.ContentLength ?? MaxBodyBytes) + 1];
        var length = 0;
        try
        {
            int read;
            while (length < buffer.Length && (read = await request.Body.ReadAsync(buffer.AsMemory(length), request.HttpContext.RequestAborted)) > 0)
            {
                length += read;
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return null; // Kestrel's own limit (AdminRequestGuard sets it to the same size)
        }

        return length > MaxBodyBytes ? null : buffer[..length];
    }

    /// <summary>A JsonDocument keeps strings as sent; reading each once here makes an unreadable one fail now, not later.</summary>
    private static void ReadEveryString(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    _ = property.Name;
                    ReadEveryString(property.Value);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    ReadEveryString(item);
                }

                break;
            case JsonValueKind.String:
                _ = element.GetString();
                break;
        }
    }

    /// <summary>RFC 9110 §15.5.14.</summary>
    public static IResult TooLarge() => TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge,
        title: "Content too large", detail: $"The request body must not exceed {MaxBodyBytes} bytes.");

    public static IResult Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] });

    public static IResult Invalid(Dictionary<string, string[]> errors) => TypedResults.ValidationProblem(errors);

    public static IResult NotFound(string what) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not found", detail: $"No such {what}.");

    public static IResult Conflict(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: detail);

    public static IResult Stale() => TypedResults.Problem(statusCode: StatusCodes.Status412PreconditionFailed,
        title: "Precondition failed", detail: "The resource changed since it was read: read it again (new ETag) and retry.");

    /// <summary>
    /// A refused operation as a problem: input breaking a rule 400 naming the fields, a right the actor lacks 403, nothing to act on 404, a rule
    /// about the current state 409, a concurrent change 412 (nothing was written in any case).
    /// </summary>
    public static IResult Refused(OperationResult result) => result.Outcome switch
    {
        OperationOutcome.Invalid => Invalid(result.Errors!.ToDictionary()),
        OperationOutcome.Conflict => Conflict(result.Detail!),
        OperationOutcome.NotFound => NotFound(result.Detail!),
        OperationOutcome.Forbidden => TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: result.Detail),
        _ => Stale(),
    };

    public static string ETag(long version) => $"\"{version}\"";

    /// <summary>
    /// RFC 9110 §13.1.1: an update must name the version it was made from; a missing If-Match is refused with 428
    /// (RFC 6585 §3), a stale one with 412, so a lost update is impossible.
    /// </summary>
    public static IResult? CheckIfMatch(HttpRequest request, long currentVersion) => CheckIfMatch(request, ETag(currentVersion));

    public static IResult? CheckIfMatch(HttpRequest request, string currentETag)
    {
        var header = request.Headers.IfMatch.ToString();
        if (string.IsNullOrEmpty(header))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status428PreconditionRequired, title: "Precondition required",
                detail: "Send the resource's ETag in If-Match.");
        }

        return header == "*" || header.Split(',').Select(t => t.Trim()).Contains(currentETag) ? null : Stale();
    }

    public static void SetETag(HttpResponse response, long version) => response.Headers[HeaderNames.ETag] = ETag(version);

    public static string EncodeCursor(string key) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(key));

    public static bool TryDecodeCursor(string? cursor, out string? key)
    {
        key = null;
        if (string.IsNullOrEmpty(cursor))
        {
            return true;
        }

        try
        {
            key = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(cursor));
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    public static int ClampLimit(int? limit) => Math.Clamp(limit ?? 50, 1, 200);
}

/// <summary>A page of results and the cursor of the next page (null on the last page).</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? Next);
