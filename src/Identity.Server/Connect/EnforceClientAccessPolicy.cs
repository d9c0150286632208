using System.Globalization;
using Identity.Server.Clients;
using Microsoft.AspNetCore;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>The handlers that enforce client access policies, and what they leave on a refused transaction.</summary>
public static class ClientAccessEnforcement
{
    /// <summary>Set on a transaction refused for its rate: the Retry-After seconds (<see cref="RateLimitedStatus"/> answers 429).</summary>
    public const string RetryAfterProperty = ".identity_client_rate_limited";

    /// <summary>
    /// Right after OpenIddict has authenticated the client (secret, assertion or certificate) and before it reads the
    /// token the request carries (code, refresh token, token to introspect or revoke): the answer cannot depend on that
    /// token, and a refused request costs no token validation or lookup.
    /// </summary>
    public static IEnumerable<OpenIddictServerHandlerDescriptor> Descriptors =>
    [
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
            .AddFilter<RequireClientEndpoint>()
            .UseScopedHandler<EnforceClientAccessPolicy>()
            .SetOrder(OpenIddictServerHandlers.ValidateClientCertificate.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build(),
        RateLimitedStatus.Descriptor,
    ];
}

/// <summary>The endpoints a client calls itself, authenticated: token, introspection, revocation.</summary>
public sealed class RequireClientEndpoint : IOpenIddictServerHandlerFilter<ProcessAuthenticationContext>
{
    public ValueTask<bool> IsActiveAsync(ProcessAuthenticationContext context) => ValueTask.FromResult(context.EndpointType
        is OpenIddictServerEndpointType.Token or OpenIddictServerEndpointType.Introspection or OpenIddictServerEndpointType.Revocation);
}

/// <summary>
/// A client's access policy (<see cref="ClientAccessPolicy"/>) where the client calls the server itself: right after
/// OpenIddict has authenticated it at the token, introspection and revocation endpoints (the endpoint's
/// <c>ValidateAuthentication</c> then turns the refusal into its error response).
/// <list type="bullet">
/// <item>A call from outside the client's allow-list is <c>invalid_client</c> (401), the very answer a wrong secret gets
/// (RFC 6749 §5.2): whoever holds stolen credentials learns neither that they work nor that the address is the reason.
/// The address is the connection's after <c>UseForwardedHeaders</c>, which believes only configured proxies (0038).</item>
/// <item>A token request over the client's budget is 429 with <c>Retry-After</c> (RFC 6585 §4) and the RFC 6749
/// error <c>temporarily_unavailable</c>, the one code that tells a client to come back later with the same request
/// (decision 0049).</item>
/// </list>
/// The policy comes from the cached client (no query per request); refusals are counted and audited
/// (<see cref="ClientRefusals"/>).
/// </summary>
public sealed class EnforceClientAccessPolicy(
    IOpenIddictApplicationManager applications, ClientTokenRateLimiter limiter, ClientRefusals refusals)
    : IOpenIddictServerHandler<ProcessAuthenticationContext>
{
    public async ValueTask HandleAsync(ProcessAuthenticationContext context)
    {
        if (context.ClientId is not { Length: > 0 } clientId || context.Transaction.GetHttpRequest()?.HttpContext is not { } http
            || await applications.FindByClientIdAsync(clientId, context.CancellationToken) is not OpenIddictEntityFrameworkCoreApplication application)
        {
            return;
        }

        var policy = ClientAccessPolicy.Of(application);
        var endpoint = ClientRefusals.EndpointName(context.EndpointType);

        if (!policy.Allows(http.Connection.RemoteIpAddress))
        {
            // Exactly OpenIddict's wrong-secret refusal (ValidateClientSecret): nothing here may differ from it.
            context.Reject(Errors.InvalidClient, OpenIddictResources.GetResourceString(OpenIddictResources.ID2055),
                OpenIddictResources.FormatID8000(OpenIddictResources.ID2055));
            await refusals.AccessRefusedAsync(context.Transaction, http, clientId, ClientRefusals.AddressNotAllowed, endpoint);
            return;
        }

        // The budget is a token-endpoint budget, and only an authenticated client's: a public client's id is no secret.
        if (context.EndpointType != OpenIddictServerEndpointType.Token || policy.TokenRateLimit is not { } limit
            || application.ClientType != ClientTypes.Confidential || limiter.TryAcquire(clientId, limit, out var retryAfter))
        {
            return;
        }

        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        context.Reject(Errors.TemporarilyUnavailable,
            string.Create(CultureInfo.InvariantCulture, $"Too many token requests for this client: retry in {seconds} s."));
        context.Transaction.Properties[ClientAccessEnforcement.RetryAfterProperty] = seconds;
        await refusals.AccessRefusedAsync(context.Transaction, http, clientId, ClientRefusals.RateLimited, endpoint,
            new { limit.Permits, window = limit.Window.ToString("c", CultureInfo.InvariantCulture) });
    }
}

/// <summary>
/// A token request refused for its rate is answered 429 with <c>Retry-After</c> (RFC 6585 §4, RFC 9110 §10.2.3), set
/// after OpenIddict's own status (400 for every error that is not <c>invalid_client</c>) and before the body is written.
/// </summary>
public sealed class RateLimitedStatus : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
            .UseSingletonHandler<RateLimitedStatus>()
            .SetOrder(OpenIddict.Server.AspNetCore.OpenIddictServerAspNetCoreHandlers.AttachHttpResponseCode<ApplyTokenResponseContext>.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        if (context.Transaction.Properties.TryGetValue(ClientAccessEnforcement.RetryAfterProperty, out var value)
            && value is int seconds && context.Transaction.GetHttpRequest()?.HttpContext.Response is { } response)
        {
            response.StatusCode = StatusCodes.Status429TooManyRequests;
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }

        return ValueTask.CompletedTask;
    }
}
