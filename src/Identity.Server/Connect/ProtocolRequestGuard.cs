using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Connect;

/// <summary>
/// Front door of the protocol endpoints (<c>/connect/*</c>): a request body larger than any legitimate
/// OAuth request, or one the form reader cannot parse, gets an RFC 6749 §5.2 JSON error (400 invalid_request)
/// instead of an exception page, before OpenIddict reads it.
/// </summary>
public sealed class ProtocolRequestGuard(RequestDelegate next, ILogger<ProtocolRequestGuard> logger)
{
    /// <summary>A client assertion with a certificate chain stays far below this.</summary>
    public const long MaxBodyBytes = 16 * 1024;

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

    private static async Task WriteErrorAsync(HttpContext context, string description)
    {
        context.Response.Clear();
        context.Response.StatusCode = StatusCodes.Status400BadRequest;
        context.Response.ContentType = "application/json;charset=UTF-8";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers.Pragma = "no-cache";
        await JsonSerializer.SerializeAsync(context.Response.Body,
            new Dictionary<string, string> { [Parameters.Error] = Errors.InvalidRequest, [Parameters.ErrorDescription] = description },
            cancellationToken: context.RequestAborted);
    }
}
