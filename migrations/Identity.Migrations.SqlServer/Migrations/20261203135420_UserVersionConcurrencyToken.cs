using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Identity.Migrations.SqlServer.Migrations
{
    /// <inheritdoc />
    public partial class UserVersionConcurrencyToken : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {

        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {

        }
    }
}
