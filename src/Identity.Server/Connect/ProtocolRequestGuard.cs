using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Connect;

/// <summary>
/// Front door of the protocol endpoints (<c>/connect/*</c>): a request body larger than any legitimate
/// OAuth request, a Content-Type that is not one media type, or a body the form reader cannot parse, gets an
/// RFC 6749 §5.2 JSON error (400 invalid_request) instead of an exception page, before OpenIddict reads it.
/// </summary>
public sealed class ProtocolRequestGuard(RequestDelegate next, ILogger<ProtocolRequestGuard> logger)
{
    /// <summary>A client assertion with a certificate chain stays far below this.</summary>
    public const long MaxBodyBytes = 16 * 1024;

    /// <summary>RFC 6749 §4.1.3, §4.4.2, RFC 7662 §2.1, RFC 7009 §2.1: protocol POSTs are form-encoded.</summary>
    private const string FormMediaType = "application/x-www-form-urlencoded";

    public async Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments("/connect", StringComparison.OrdinalIgnoreCase))
        {
            await next(context);
            return;
        }

        if (context.Request.ContentLength > MaxBodyBytes)
        {
            await WriteErrorAsync(context, "The request body is too large.");
            return;
        }

        if (HttpMethods.IsPost(context.Request.Method) && context.Request.ContentType is { Length: > 0 } contentType
            && (!MediaTypeHeaderValue.TryParse(contentType, out var mediaType)
                || (contentType.StartsWith(FormMediaType, StringComparison.OrdinalIgnoreCase)
                    && !FormMediaType.Equals(mediaType.MediaType.Value, StringComparison.OrdinalIgnoreCase))))
        {
            // RFC 9110 §8.3: one media type. A list ("application/x-www-form-urlencoded, application/json"), or another type
            // that merely begins like the form's ("application/x-www-form-urlencoded-junk"), passes OpenIddict's prefix
            // check, then makes the form reader throw InvalidOperationException ("Incorrect Content-Type").
            await WriteErrorAsync(context, "The Content-Type header must name one media type: application/x-www-form-urlencoded.");
            return;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxBodyBytes;
        }

        if (context.Request.ContentLength is null && HttpMethods.IsPost(context.Request.Method))
        {
            // A chunked body has no length to check up front: reading more than the limit throws IOException.
            context.Request.EnableBuffering(bufferThreshold: (int)MaxBodyBytes, bufferLimit: MaxBodyBytes);
        }

        try
        {
            await next(context);
        }
        catch (Exception ex) when (ex is BadHttpRequestException or InvalidDataException or IOException && !context.Response.HasStarted)
        {
            logger.LogInformation("Refused a malformed request to {Path}: {Reason}", context.Request.Path, ex.GetType().Name);
            await WriteErrorAsync(context, "The request body is malformed or too large.");
        }
    }

    /// <summary>The protocol endpoints' answer to a malformed request: RFC 6749 §5.2 invalid_request, uncached (§5.1).</summary>
    public static Task WriteErrorAsync(HttpContext context, string description) =>
        WriteErrorAsync(context, StatusCodes.Status400BadRequest, Errors.InvalidRequest, description);

    /// <summary>
    /// An RFC 6749 §5.2 error response (JSON, uncached) with <paramref name="status"/> and <paramref name="error"/>, and
    /// <c>Retry-After</c> (RFC 9110 §10.2.3) when <paramref name="retryAfter"/> is given.
    /// </summary>
    public static async Task WriteErrorAsync(HttpContext context, int status, string error, string description, TimeSpan? retryAfter = null)
    {
        context.Response.Clear();
        context.Response.StatusCode = status;
        if (retryAfter is { } delay)
        {
            context.Response.Headers.RetryAfter = ((int)Math.Ceiling(delay.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        context.Response.ContentType = "application/json;charset=UTF-8";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers.Pragma = "no-cache";
        await JsonSerializer.SerializeAsync(context.Response.Body,
            new Dictionary<string, string> { [Parameters.Error] = error, [Parameters.ErrorDescription] = description },
            cancellationToken: context.RequestAborted);
    }
}
