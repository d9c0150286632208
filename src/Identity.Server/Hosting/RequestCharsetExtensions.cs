using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace Identity.Server.Hosting;

/// <summary>
/// Refuses a request whose Content-Type names a charset the runtime will not decode, before anything reads its body.
/// <para>
/// UTF-7 is disabled in .NET (SYSLIB0001): <c>MediaTypeHeaderValue.Encoding</c> then throws
/// <see cref="NotSupportedException"/> (it catches only the <see cref="ArgumentException"/> of an unknown name), and
/// every form reader — OpenIddict's request extraction, anti-forgery, model binding — turned
/// <c>Content-Type: application/x-www-form-urlencoded; charset=utf-7</c> into a 500. The content is in a format the
/// server does not support: RFC 9110 §15.5.16 415, as an RFC 9457 problem; on the protocol endpoints an RFC 6749 §5.2
/// <c>invalid_request</c> (400), the only error format their clients read.
/// </para>
/// </summary>
public static class RequestCharsetExtensions
{
    public static WebApplication UseSupportedCharsetsOnly(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            if (UnsupportedCharset(context.Request.ContentType) is not { } charset)
            {
                await next(context);
                return;
            }

            await RequestRefusal.WriteAsync(context, StatusCodes.Status415UnsupportedMediaType, "Unsupported Media Type",
                $"The request body's charset '{charset}' is not supported: send UTF-8.");
        });
        return app;
    }

    /// <summary>The charset of <paramref name="contentType"/> when the runtime refuses to decode it, else null.</summary>
    internal static string? UnsupportedCharset(string? contentType)
    {
        // Parsed as the form reader parses it (FormFeature), so the two agree on which charset the body claims.
        if (!MediaTypeHeaderValue.TryParse(contentType, out var media) || StringSegment.IsNullOrEmpty(media.Charset))
        {
            return null;
        }

        try
        {
            _ = media.Encoding; // null for a name it does not know (the reader then falls back to UTF-8)
            return null;
        }
        catch (NotSupportedException)
        {
            return media.Charset.ToString();
        }
    }
}
