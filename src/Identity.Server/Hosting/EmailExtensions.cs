using Identity.Core.Email;
using Identity.Server.Email;
using Microsoft.Extensions.Options;

namespace Identity.Server.Hosting;

public static class EmailExtensions
{
    /// <summary>
    /// Email (<c>Email:*</c>, validated at start): operations queue their emails in the database with their change; the
    /// worker sends them when a mail server is configured. Without one, nothing is queued and the pages that need email hide.
    /// </summary>
    public static IHostApplicationBuilder AddEmail(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<IValidateOptions<EmailOptions>, EmailOptionsValidator>();
        builder.Services.AddOptions<EmailOptions>()
            .BindConfiguration(EmailOptions.SectionName)
            .ValidateOnStart();
        builder.Services.AddScoped<OutgoingEmail>();
        builder.Services.AddScoped<IAccountEmails, AccountEmails>();
        if (!string.IsNullOrWhiteSpace(builder.Configuration[$"{EmailOptions.SectionName}:{nameof(EmailOptions.Host)}"]))
        {
            builder.Services.AddHostedService<EmailDelivery>();
        }

        return builder;
    }
}
