using System.Net;
using System.Net.Http.Headers;

namespace Identity.Region.Tokens;

/// <summary>
/// Sets <c>Authorization: Bearer</c> (RFC 6750 §2.1) on every outgoing request from an <see cref="IdentityTokenClient"/>.
/// On a 401 the token is dropped and a request without a body is sent once more with a new one (a token revoked, or
/// signed with a key the API no longer trusts).
/// </summary>
public sealed class IdentityAccessTokenHandler(IdentityTokenClient tokens) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var token = await tokens.GetTokenAsync(cancellationToken);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await base.SendAsync(request, cancellationToken);
        if (response.StatusCode != HttpStatusCode.Unauthorized || request.Content is not null)
        {
            return response;
        }

        response.Dispose();
        tokens.Invalidate(token);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await tokens.GetTokenAsync(cancellationToken));
        return await base.SendAsync(request, cancellationToken);
    }
}
