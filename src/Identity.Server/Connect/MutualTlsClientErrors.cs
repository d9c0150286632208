using Identity.Server.Hosting;
using Microsoft.AspNetCore;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// A client-credentials request on the mTLS endpoint with no certificate and no other credential is refused as
/// <c>invalid_client</c> (401), "no client authentication included" (RFC 6749 §5.2), where OpenIddict answers
/// <c>invalid_request</c>: a service whose certificate did not reach the server learns that it failed to authenticate.
/// </summary>
public sealed class MutualTlsClientErrors(IOptions<MutualTlsOptions> mtls) : IOpenIddictServerHandler<ValidateTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
            .UseSingletonHandler<MutualTlsClientErrors>()
            .SetOrder(OpenIddictServerHandlers.Exchange.ValidateClientCredentialsParameters.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ValidateTokenRequestContext context)
    {
        var connection = context.Transaction.GetHttpRequest()?.HttpContext.Connection;
        if (connection is not null && connection.LocalPort == mtls.Value.Port && connection.ClientCertificate is null
            && OpenIddict.Abstractions.OpenIddictExtensions.IsClientCredentialsGrantType(context.Request)
            && string.IsNullOrEmpty(context.Request.ClientSecret) && string.IsNullOrEmpty(context.Request.ClientAssertion))
        {
            context.Reject(Errors.InvalidClient, "A client certificate is required on this endpoint (RFC 8705).");
        }

        return ValueTask.CompletedTask;
    }
}
