using Identity.Server.Email;

namespace Identity.Server.AdminConsole;

/// <summary>
/// The invitation link the console shows once: the invitation page on the configured public address (as the emailed
/// link, never built from the request's Host header).
/// </summary>
public static class InvitationLinks
{
    public static string For(IConfiguration configuration, string token) =>
        new Uri(ConsoleClient.Origin(configuration), AccountEmails.InvitationPage.TrimStart('/') + "?token=" + Uri.EscapeDataString(token)).AbsoluteUri;
}
