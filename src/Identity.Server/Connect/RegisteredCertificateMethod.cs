using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// A client registered for <c>tls_client_auth</c> or <c>self_signed_tls_client_auth</c> authenticates with its certificate
/// and no other way (RFC 8705 §2; RFC 7591 §2, <c>token_endpoint_auth_method</c> is the method the server requires): a
/// request of such a client carrying a client secret or a client assertion is <c>invalid_client</c> (RFC 6749 §5.2, 401),
/// reason <see cref="CertificateRefusal.MethodNotRegistered"/>, whatever certificate came with it. Without this, a
/// self-signed client's assertion signed with its certificate's key (the key of its JWKS) was accepted as
/// <c>private_key_jwt</c>.
/// </summary>
public sealed class RegisteredCertificateMethod(IOpenIddictApplicationManager applications, ClientCertificateVerdict verdict)
    : IOpenIddictServerHandler<ProcessAuthenticationContext>
{
    /// <summary>
    /// After OpenIddict knows the client (its <c>client_id</c>, or the issuer of a valid assertion that came without one)
    /// and before it checks a secret: a certificate client has none, so OpenIddict's refusal would not say why.
    /// </summary>
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
            .AddFilter<RequireClientEndpoint>()
            .UseScopedHandler<RegisteredCertificateMethod>()
            .SetOrder(OpenIddictServerHandlers.ValidateClientId.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ProcessAuthenticationContext context)
    {
        if (!MutualTlsClientErrors.CarriesOtherCredential(context.Request) || context.ClientId is not { Length: > 0 } clientId
            || await applications.FindByClientIdAsync(clientId, context.CancellationToken) is not { } application
            || !CertificateRefusal.IsCertificateClient(await applications.GetPropertiesAsync(application, context.CancellationToken)))
        {
            return;
        }

        verdict.Refuse(CertificateRefusal.MethodNotRegistered);
        context.Reject(Errors.InvalidClient, CertificateRefusal.Describe(CertificateRefusal.MethodNotRegistered));
    }
}
